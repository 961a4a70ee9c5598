/* store.h — the object store: named byte blobs (data partitions, gradients,
 * checkpoints) behind one small interface, the backend chosen by URL.
 *
 *   file://DIR or a plain path   objects are files under DIR (the embedded
 *                                default; DIR is created if missing)
 *   s3://BUCKET[/PREFIX]         AWS S3 or an S3-compatible server, path-style
 *                                requests signed with SigV4
 *
 * Keys are relative names such as "grads/step-3/rank-1". A valid key is 1 to
 * 1024 bytes of printable ASCII (0x20..0x7e), does not start or end with '/',
 * has no empty segment ("a//b"), no "." or ".." segment, and no segment
 * starting with ".pl-" (reserved for the file backend's temporary files).
 * Every call validates its key and fails with PL_ERR_ARG naming it.
 *
 * S3 settings (all optional, from pl_store_opts or the environment):
 *   endpoint     opts->s3_endpoint, else AWS_ENDPOINT_URL_S3, else
 *                AWS_ENDPOINT_URL, else https://s3.REGION.amazonaws.com;
 *                "http[s]://HOST[:PORT]" with no path, query or user info
 *   region       opts->region, else AWS_REGION, else AWS_DEFAULT_REGION,
 *                else us-east-1
 *   credentials  AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ optional
 *                AWS_SESSION_TOKEN), else the profile AWS_PROFILE (default
 *                "default") of AWS_SHARED_CREDENTIALS_FILE (default
 *                ~/.aws/credentials). Never from source code.
 * Every S3 request has a connect and a total timeout; connection failures,
 * timeouts, partial transfers and HTTP 5xx are retried (every operation here
 * is idempotent) with exponential backoff. A failed or short transfer is an
 * error, never a truncated object. Messages name the bucket and key, the HTTP
 * status and the S3 error code.
 *
 * A handle may be used from several threads at once (each call is
 * independent). Functions are prefixed pl_store_.
 */
#ifndef PEERLESS_STORE_H
#define PEERLESS_STORE_H

#include <stddef.h>

#include "peerless/status.h"

#define PL_STORE_KEY_MAX 1024

typedef struct pl_store pl_store;

/* Options; a zeroed struct (or NULL) means every default. */
typedef struct pl_store_opts {
    const char *s3_endpoint;  /* NULL: see the header comment */
    const char *region;       /* NULL: see the header comment */
    long connect_timeout_ms;  /* 0: 10000 */
    long timeout_ms;          /* total per request attempt; 0: 600000 */
    int retries;              /* extra attempts after a transient failure;
                                 0: 3, negative: none */
    int list_page_size;       /* keys per ListObjectsV2 page; 0: server's
                                 default (1000) */
} pl_store_opts;

/* Open the store at `url`. `opts` (may be NULL) is copied. On success *out
 * owns the handle; close it with pl_store_close. Bad URLs (unknown scheme,
 * missing or invalid bucket, bad endpoint, invalid prefix) fail with
 * PL_ERR_ARG; an S3 store without credentials fails with PL_ERR_ARG. Opening
 * an S3 store sends no request. */
int pl_store_open(const char *url, const pl_store_opts *opts, pl_store **out,
                  pl_err *err);

/* Free the handle; NULL is a no-op. */
void pl_store_close(pl_store *s);

/* The store's canonical URL ("file:///abs/dir", "s3://bucket/prefix");
 * borrowed, valid until pl_store_close. */
const char *pl_store_url(const pl_store *s);

/* Store `len` bytes at `data` (borrowed for the call) under `key`, replacing
 * any previous object. Atomic: a reader sees the old or the new object,
 * never a partial one. */
int pl_store_put(pl_store *s, const char *key, const void *data, size_t len,
                 pl_err *err);

/* Fetch the object `key`: on success *data is a malloc'd buffer of exactly
 * *len bytes (non-NULL even when *len is 0) that the caller frees. A missing
 * key fails with PL_ERR_NOTFOUND and leaves *data NULL. */
int pl_store_get(pl_store *s, const char *key, void **data, size_t *len,
                 pl_err *err);

/* Every key that starts with `prefix` ("" or NULL: all keys), sorted by
 * byte value (strcmp), recursively (no delimiter). `prefix` need not end at
 * a '/'. On success *keys is a malloc'd array of *n malloc'd strings (NULL
 * when *n is 0); free it with pl_store_keys_free. */
int pl_store_list(pl_store *s, const char *prefix, char ***keys, size_t *n,
                  pl_err *err);

/* Free a list returned by pl_store_list; NULL is a no-op. */
void pl_store_keys_free(char **keys, size_t n);

/* Delete the object `key`. Deleting a missing key succeeds (PL_OK), as on
 * S3, so deletes can be retried safely. */
int pl_store_delete(pl_store *s, const char *key, pl_err *err);

/* Does `key` exist? On success *exists is 1 or 0 and, if `size` is not
 * NULL, *size is the object's length in bytes (0 when missing). */
int pl_store_stat(pl_store *s, const char *key, int *exists, size_t *size,
                  pl_err *err);

/* PL_OK if `key` is a valid key (rules above), else PL_ERR_ARG with a
 * message naming the key and the broken rule. */
int pl_store_key_check(const char *key, pl_err *err);

#endif
