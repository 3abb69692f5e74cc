/* A hostile peer on a real unix socket, for the hardening tests: a thread accepts one client and
 * runs a script against it (slow-loris, endless lines, floods, bad bytes, hang-ups). */
#pragma once
#include <glib.h>
#include <stdbool.h>
#include "stillpoint/json.h"

typedef struct HostilePeer HostilePeer;
typedef void (*HostileScript)(HostilePeer *peer, int fd);

/* Listens in a fresh temporary directory; the script runs once a client connects. */
HostilePeer *hostile_peer_start(HostileScript script);
const char *hostile_peer_path(HostilePeer *peer);
/* Tells the script to stop (hostile_peer_stopping), waits for it, and removes the socket. */
void hostile_peer_stop(HostilePeer *peer);

/* For scripts. */
bool hostile_peer_stopping(HostilePeer *peer);
/* The next request the client sent (parsed), or NULL once it hung up or the peer stops. */
SpJson *hostile_peer_read(HostilePeer *peer, int fd);
/* Sends all of data; false once the client is gone. */
bool hostile_peer_send(int fd, const void *data, size_t len);
/* Sends text one byte every interval_ms (slow-loris); false once the client is gone. */
bool hostile_peer_trickle(HostilePeer *peer, int fd, const char *text, guint interval_ms);
/* Sends chunk again and again as fast as the client takes it, until it is gone or the peer
 * stops. */
void hostile_peer_flood(HostilePeer *peer, int fd, const void *chunk, size_t len);
/* Waits until the client hangs up or the peer stops, reading and dropping what it sends. */
void hostile_peer_drain(HostilePeer *peer, int fd);

/* Resident memory of this process, in KiB. */
long hostile_rss_kib(void);
