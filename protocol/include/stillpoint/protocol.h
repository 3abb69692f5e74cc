/* libstillpoint-protocol: the wire contract between host and guest (see protocol/PROTOCOL.md). */
#pragma once
#include "stillpoint/status.h"
#include "stillpoint/alloc.h"
#include "stillpoint/json.h"
#include "stillpoint/framer.h"
#include "stillpoint/message.h"
#include "stillpoint/command.h"

#define SP_PROTOCOL_VERSION "1"
