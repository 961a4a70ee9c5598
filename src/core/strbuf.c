/* strbuf.c — growable strings. */
#include "core/strbuf.h"

#include <stdlib.h>
#include <string.h>

void pl_sb_add(pl_sb *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void pl_sb_str(pl_sb *b, const char *s) { pl_sb_add(b, s, strlen(s)); }

char *pl_sb_done(pl_sb *b)
{
    if (b->failed || !b->p) {
        free(b->p);
        b->p = NULL;
        return b->failed ? NULL : strdup("");
    }
    return b->p;
}
