/* Allocation that never fails, as GLib's g_malloc: on allocation failure the process prints
 * "stillpoint: out of memory" and aborts. The protocol library and the agents' command core
 * allocate only through these, so no caller checks for NULL or SP_E_NOMEM; a guest agent that
 * cannot allocate a few hundred bytes cannot answer anyway, and its supervisor restarts it. */
#pragma once
#include <stddef.h>

void *sp_malloc(size_t size);
void *sp_calloc(size_t n, size_t size); /* zeroed; aborts on n * size overflow too */
void *sp_realloc(void *p, size_t size);
char *sp_strndup(const char *s, size_t len); /* len bytes of s (may hold NUL), NUL-terminated */
char *sp_strdup(const char *s);
