/* A scripted peer for the host client fuzz targets: a unix socket whose peer sends one fuzz input
 * as its whole side of the conversation, then shuts its side down, so every read after it ends
 * at once (no target ever waits for a deadline). */
#pragma once
#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct FuzzPeer FuzzPeer;

/* A listening socket in a fresh temporary directory (removed at exit). */
FuzzPeer *fuzz_peer_new(const char *name);
const char *fuzz_peer_path(const FuzzPeer *peer);
/* Serve the next connection with data (borrowed until fuzz_peer_wait). */
void fuzz_peer_start(FuzzPeer *peer, const uint8_t *data, size_t size);
/* After the client closed its end: join the peer, return what the client sent (owned). */
GByteArray *fuzz_peer_wait(FuzzPeer *peer);

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* Whether the current input itself contains "(null)" (errors may quote the peer). */
extern bool fuzz_peer_input_says_null;

/* A client error must say something, and never "(null)" (a NULL passed for a %s: undefined
 * behaviour, which glibc happens to print) unless the peer said it. */
#define CHECK_ERROR(error)                                                                  \
    CHECK((error) != NULL && (error)->message != NULL && (error)->message[0] &&             \
          (fuzz_peer_input_says_null || strstr((error)->message, "(null)") == NULL))
