/* strbuf.h — a growable, NUL-terminated string for building headers and
 * requests (internal). `failed` latches out-of-memory so callers check once
 * at the end. Zero-initialise (pl_sb b = {0}) before use. */
#ifndef PEERLESS_CORE_STRBUF_H
#define PEERLESS_CORE_STRBUF_H

#include <stddef.h>

typedef struct pl_sb {
    char *p;    /* owned; NULL until the first append */
    size_t n;   /* bytes used (excluding the NUL) */
    size_t cap;
    int failed;
} pl_sb;

void pl_sb_add(pl_sb *b, const char *s, size_t n);
void pl_sb_str(pl_sb *b, const char *s);
/* Hand over the string (caller frees): "" for an empty buffer, NULL (and
 * the buffer freed) if an allocation failed. */
char *pl_sb_done(pl_sb *b);

#endif
