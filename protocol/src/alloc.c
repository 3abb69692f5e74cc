/* The allocator of the protocol library and the agents' core: abort on failure (alloc.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stillpoint/alloc.h"

static void out_of_memory(size_t size)
{
    fprintf(stderr, "stillpoint: out of memory (%zu bytes)\n", size);
    abort();
}

void *sp_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

void *sp_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n * size);
    return p;
}

void *sp_realloc(void *p, size_t size)
{
    void *n = realloc(p, size ? size : 1);
    if (!n)
        out_of_memory(size);
    return n;
}

char *sp_strndup(const char *s, size_t len)
{
    char *d = sp_malloc(len + 1);
    if (len > 0)
        memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *sp_strdup(const char *s)
{
    return sp_strndup(s, strlen(s));
}
