/* What the agent and its VSS software provider DLL agree on: the provider's identity and the
 * three named events through which the provider's CommitSnapshots holds the frozen window. */
#pragma once
#include <windows.h>

/* The provider (VSS_ID) and its COM class. Never change them: they are registered on guests. */
/* {885dfb1a-8377-4dfb-9eb3-3d56a0788896} */
#define SP_PROVIDER_ID_INIT \
    { 0x885dfb1a, 0x8377, 0x4dfb, { 0x9e, 0xb3, 0x3d, 0x56, 0xa0, 0x78, 0x88, 0x96 } }
/* {3aa0e7bf-3e09-47de-956b-bc2a33861d6c} */
#define SP_PROVIDER_CLSID_INIT \
    { 0x3aa0e7bf, 0x3e09, 0x47de, { 0x95, 0x6b, 0xbc, 0x2a, 0x33, 0x86, 0x1d, 0x6c } }
#define SP_PROVIDER_CLSID_STR L"{3aa0e7bf-3e09-47de-956b-bc2a33861d6c}"
/* {f6fadeb3-4368-4a1e-bf3e-f967b4513e68}: changes with each provider version. */
#define SP_PROVIDER_VERSION_ID_INIT \
    { 0xf6fadeb3, 0x4368, 0x4a1e, { 0xbf, 0x3e, 0xf9, 0x67, 0xb4, 0x51, 0x3e, 0x68 } }
#define SP_PROVIDER_NAME L"stillpoint VSS provider"
#define SP_PROVIDER_VERSION L"0.1.0"
#define SP_PROVIDER_DLL L"stillpoint-vss-provider.dll"

/* The agent creates the events (only SYSTEM and Administrators may open them); the provider,
 * loaded by the VSS service, opens them:
 *   armed    agent → provider: a stillpoint freeze is in progress; only then does the provider
 *            claim volumes, so that VSS never picks it for another requester's backup
 *   frozen   provider → agent: writers are frozen and the provider holds the writes
 *   release  agent → provider: return from CommitSnapshots now
 *   expired  provider → agent: the hold limit passed before release; the provider let go */
#define SP_EVENT_ARMED L"Global\\stillpoint-vss-armed"
#define SP_EVENT_FROZEN L"Global\\stillpoint-vss-frozen"
#define SP_EVENT_RELEASE L"Global\\stillpoint-vss-release"
#define SP_EVENT_EXPIRED L"Global\\stillpoint-vss-expired"
/* The provider returns from CommitSnapshots this long after "frozen" at the latest: inside
 * Windows' 10 s flush-and-hold limit, with a margin for VSS's own work, so that VSS never fails
 * the set with VSS_E_FLUSH_WRITES_TIMEOUT while we hold. */
#define SP_PROVIDER_HOLD_MS 9500u
/* Protected DACL: SYSTEM and the Administrators group get full access, nobody else any. */
#define SP_EVENT_SDDL L"D:P(A;;GA;;;SY)(A;;GA;;;BA)"
