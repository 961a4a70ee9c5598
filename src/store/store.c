/* store.c — URL dispatch, key validation and the calls every backend shares. */
#include "store/store_impl.h"

#include <stdlib.h>
#include <string.h>

struct pl_store {
    const pl_store_vtable *vt;
    void *impl;
    char *url;
};

/* Checks one '/'-separated segment [p, p+n) of a key or prefix;
 * `allow_empty` accepts an empty final segment (a prefix may end with '/'). */
static int check_segment(const char *what, const char *key, const char *p,
                         size_t n, int allow_empty, pl_err *err)
{
    if (n == 0 && !allow_empty)
        return pl_err_set(err, PL_ERR_ARG,
                          "invalid %s '%s': empty path segment (leading, "
                          "trailing or doubled '/')", what, key);
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
        return pl_err_set(err, PL_ERR_ARG,
                          "invalid %s '%s': '.' and '..' segments are not "
                          "allowed", what, key);
    if (n >= 4 && memcmp(p, ".pl-", 4) == 0)
        return pl_err_set(err, PL_ERR_ARG,
                          "invalid %s '%s': segments starting with '.pl-' "
                          "are reserved", what, key);
    return PL_OK;
}

/* Shared rules for keys (is_prefix = 0) and list prefixes (is_prefix = 1:
 * may be empty, may end with '/' or in the middle of a segment). */
static int check_name(const char *what, const char *key, int is_prefix,
                      pl_err *err)
{
    if (!key)
        return pl_err_set(err, PL_ERR_ARG, "invalid %s: NULL", what);
    size_t len = strlen(key);
    if (len == 0 && !is_prefix)
        return pl_err_set(err, PL_ERR_ARG, "invalid %s: empty", what);
    if (len > PL_STORE_KEY_MAX)
        return pl_err_set(err, PL_ERR_ARG,
                          "invalid %s '%.40s...': %zu bytes, at most %d", what,
                          key, len, PL_STORE_KEY_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c > 0x7e)
            return pl_err_set(err, PL_ERR_ARG,
                              "invalid %s '%s': byte 0x%02x at offset %zu is "
                              "not printable ASCII", what, key, c, i);
    }
    if (len == 0)
        return PL_OK;
    if (key[0] == '/')
        return pl_err_set(err, PL_ERR_ARG,
                          "invalid %s '%s': must not start with '/'", what, key);
    const char *p = key;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        /* A prefix's last segment may be partial ("step-1" matches
         * "step-10"), so only complete segments are checked there. */
        if (slash || !is_prefix) {
            int st = check_segment(what, key, p, n, is_prefix && !slash, err);
            if (st)
                return st;
        } else if (n >= 4 && memcmp(p, ".pl-", 4) == 0) {
            return check_segment(what, key, p, n, 1, err);
        }
        if (!slash)
            return PL_OK;
        p = slash + 1;
    }
}

int pl_store_key_check(const char *key, pl_err *err)
{
    return check_name("key", key, 0, err);
}

int pl_store_keylist_push(pl_store_keylist *l, const char *key, size_t len,
                          pl_err *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **k = realloc(l->keys, cap * sizeof *k);
        if (!k)
            return pl_err_set(err, PL_ERR_NOMEM, "listing keys: out of memory");
        l->keys = k;
        l->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return pl_err_set(err, PL_ERR_NOMEM, "listing keys: out of memory");
    memcpy(copy, key, len);
    copy[len] = '\0';
    l->keys[l->n++] = copy;
    return PL_OK;
}

void pl_store_keys_free(char **keys, size_t n)
{
    if (!keys)
        return;
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

/* Splits "scheme://rest"; a URL without "://" is a plain file path. */
static int open_backend(pl_store *s, const char *url, const pl_store_opts *opts,
                        pl_err *err)
{
    const char *sep = strstr(url, "://");
    if (!sep) {
        s->vt = &pl_store_file_vtable;
        return pl_store_file_open(url, &s->impl, &s->url, err);
    }
    size_t n = (size_t)(sep - url);
    if (n == 4 && strncmp(url, "file", 4) == 0) {
        s->vt = &pl_store_file_vtable;
        return pl_store_file_open(sep + 3, &s->impl, &s->url, err);
    }
    if (n == 2 && strncmp(url, "s3", 2) == 0) {
        s->vt = &pl_store_s3_vtable;
        return pl_store_s3_open(sep + 3, opts, &s->impl, &s->url, err);
    }
    return pl_err_set(err, PL_ERR_ARG,
                      "store URL '%s': unknown scheme '%.*s' (expected "
                      "file://DIR, s3://BUCKET[/PREFIX] or a directory path)",
                      url, (int)n, url);
}

int pl_store_open(const char *url, const pl_store_opts *opts, pl_store **out,
                  pl_err *err)
{
    *out = NULL;
    if (!url || !*url)
        return pl_err_set(err, PL_ERR_ARG, "store URL is empty");
    pl_store_opts defaults = {0};
    pl_store *s = calloc(1, sizeof *s);
    if (!s)
        return pl_err_set(err, PL_ERR_NOMEM, "opening store '%s'", url);
    int st = open_backend(s, url, opts ? opts : &defaults, err);
    if (st) {
        free(s);
        return st;
    }
    *out = s;
    return PL_OK;
}

void pl_store_close(pl_store *s)
{
    if (!s)
        return;
    s->vt->close(s->impl);
    free(s->url);
    free(s);
}

const char *pl_store_url(const pl_store *s)
{
    return s->url;
}

int pl_store_put(pl_store *s, const char *key, const void *data, size_t len,
                 pl_err *err)
{
    int st = pl_store_key_check(key, err);
    if (st)
        return st;
    if (!data && len)
        return pl_err_set(err, PL_ERR_ARG, "put '%s': NULL data of %zu bytes",
                          key, len);
    return s->vt->put(s->impl, key, data ? data : "", len, err);
}

int pl_store_get(pl_store *s, const char *key, void **data, size_t *len,
                 pl_err *err)
{
    *data = NULL;
    *len = 0;
    int st = pl_store_key_check(key, err);
    return st ? st : s->vt->get(s->impl, key, data, len, err);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int pl_store_list(pl_store *s, const char *prefix, char ***keys, size_t *n,
                  pl_err *err)
{
    *keys = NULL;
    *n = 0;
    if (!prefix)
        prefix = "";
    int st = check_name("prefix", prefix, 1, err);
    if (st)
        return st;
    pl_store_keylist l = {0};
    st = s->vt->list(s->impl, prefix, &l, err);
    if (st) {
        pl_store_keys_free(l.keys, l.n);
        return st;
    }
    if (l.n == 0) {
        free(l.keys);
        return PL_OK;
    }
    qsort(l.keys, l.n, sizeof *l.keys, cmp_keys);
    *keys = l.keys;
    *n = l.n;
    return PL_OK;
}

int pl_store_delete(pl_store *s, const char *key, pl_err *err)
{
    int st = pl_store_key_check(key, err);
    return st ? st : s->vt->del(s->impl, key, err);
}

int pl_store_stat(pl_store *s, const char *key, int *exists, size_t *size,
                  pl_err *err)
{
    size_t dummy;
    *exists = 0;
    if (!size)
        size = &dummy;
    *size = 0;
    int st = pl_store_key_check(key, err);
    return st ? st : s->vt->stat(s->impl, key, exists, size, err);
}
