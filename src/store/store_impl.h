/* store_impl.h — the backend table behind pl_store (private to src/store).
 *
 * pl_store (store.c) validates URLs, keys and prefixes, then calls one
 * backend through this table. A backend's private state hangs off `impl`.
 */
#ifndef PEERLESS_STORE_IMPL_H
#define PEERLESS_STORE_IMPL_H

#include "peerless/store.h"

/* A growable array of malloc'd key strings. */
typedef struct pl_store_keylist {
    char **keys;
    size_t n, cap;
} pl_store_keylist;

typedef struct pl_store_vtable {
    const char *scheme; /* "file", "s3" */
    int (*put)(void *impl, const char *key, const void *data, size_t len,
               pl_err *err);
    int (*get)(void *impl, const char *key, void **data, size_t *len,
               pl_err *err);
    /* Appends matching keys to a growable list (see pl_store_keylist). */
    int (*list)(void *impl, const char *prefix, pl_store_keylist *out,
                pl_err *err);
    int (*del)(void *impl, const char *key, pl_err *err);
    int (*stat)(void *impl, const char *key, int *exists, size_t *size,
                pl_err *err);
    void (*close)(void *impl);
} pl_store_vtable;

/* Append a copy of `len` bytes of `key` (a NUL is added). */
int pl_store_keylist_push(pl_store_keylist *l, const char *key, size_t len,
                          pl_err *err);

/* Open a backend. `rest` is the URL after "scheme://" (or the plain path).
 * On success *impl is the backend state and *url a malloc'd canonical URL. */
int pl_store_file_open(const char *rest, void **impl, char **url,
                       pl_err *err);
int pl_store_s3_open(const char *rest, const pl_store_opts *opts, void **impl,
                     char **url, pl_err *err);

extern const pl_store_vtable pl_store_file_vtable;
extern const pl_store_vtable pl_store_s3_vtable;

#endif
