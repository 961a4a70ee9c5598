/* s3_impl.h — the S3 backend's state and request engine (private to
 * src/store): s3.c holds the store operations, s3_http.c sends requests. */
#ifndef PEERLESS_S3_IMPL_H
#define PEERLESS_S3_IMPL_H

#include <stddef.h>

#include "peerless/status.h"
#include "store/sigv4.h"

typedef struct pl_s3 {
    char *bucket;
    char *prefix;     /* "" or "dir/sub/" (with the trailing '/') */
    char *url;        /* "s3://bucket[/dir/sub]" for messages */
    char *endpoint;   /* "http[s]://host[:port]", no trailing '/' */
    char *host;       /* Host header (port omitted when default) */
    char *region;
    char *access_key, *secret_key, *token; /* token may be NULL */
    char *ca_bundle;  /* AWS_CA_BUNDLE: CA file for https endpoints, or NULL */
    long connect_ms, total_ms;
    int retries;
    int page_size;    /* 0: server default */
} pl_s3;

/* One request. Pointers are borrowed for the call. */
typedef struct pl_s3_req {
    const char *method;          /* GET PUT HEAD DELETE */
    const char *key;             /* store key for messages; NULL: bucket */
    const char *path;            /* raw "/bucket[/prefix/key]" */
    const pl_sigv4_pair *query;
    size_t n_query;
    const unsigned char *body;   /* PUT only */
    size_t body_len;
    const char *body_hash;       /* NULL: hash of the empty body */
} pl_s3_req;

/* A complete HTTP response. `body` is malloc'd (NUL-terminated, may be NULL
 * when empty); the caller frees it. */
typedef struct pl_s3_resp {
    long status;
    unsigned char *body;
    size_t len;
    long long content_length;    /* -1 when unknown */
} pl_s3_resp;

/* curl_global_init, once per process. */
int pl_s3_global_init(pl_err *err);

/* Send `q` with retries (connection errors, timeouts, short bodies, 5xx,
 * 429). PL_OK means a complete response with any status below 500 (the
 * caller interprets it); otherwise the error names the request. */
int pl_s3_perform(const pl_s3 *s, const pl_s3_req *q, pl_s3_resp *out,
                  pl_err *err);

/* Sets `err` for an HTTP error response: names the store URL and key, the
 * method, the status and the S3 error code and message from the XML body.
 * 404 NoSuchKey (or a bodiless 404) gives PL_ERR_NOTFOUND, NoSuchBucket
 * PL_ERR_ARG, everything else PL_ERR_IO. Returns the status code set. */
int pl_s3_http_error(const pl_s3 *s, const pl_s3_req *q, long status,
                     const char *body, size_t len, pl_err *err);

/* The text of the first <tag>...</tag> in [p, end), entity-decoded into a
 * malloc'd string (*out NULL when absent). &amp; &lt; &gt; &quot; &apos;
 * and numeric references are decoded; anything else is PL_ERR_FORMAT. */
int pl_s3_xml_text(const char *p, const char *end, const char *tag,
                   char **out, pl_err *err);

#endif
