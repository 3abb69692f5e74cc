/* A scripted fake guest agent on a real unix socket, for the host's unit tests. */
#pragma once
#include <glib.h>
#include "stillpoint/json.h"

/* Returns the raw bytes to answer a request with (NULL: no answer), after *delay_ms. */
typedef char *(*FakeAgentHandler)(const char *execute, const SpJson *args, guint *delay_ms);

typedef struct FakeAgent FakeAgent;

FakeAgent *fake_agent_start(FakeAgentHandler handler);
const char *fake_agent_path(FakeAgent *fake);
/* Every request seen so far, as "execute {args-json}", joined by "\n". */
char *fake_agent_log(FakeAgent *fake);
gboolean fake_agent_saw(FakeAgent *fake, const char *line);
void fake_agent_stop(FakeAgent *fake);
/* guest-sync-delimited's answer, as qemu-ga gives it: 0xFF, then the id. */
char *fake_agent_sync_reply(const SpJson *args);
