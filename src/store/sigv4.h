/* sigv4.h — AWS Signature Version 4 for S3 requests (private to src/store,
 * exported with the pl_sigv4_ prefix so tests can check it against AWS's
 * published examples).
 *
 * Canonical request = METHOD \n URI \n QUERY \n HEADERS \n SIGNED \n PAYLOAD
 * where URI is the path with every byte outside A-Z a-z 0-9 - _ . ~ / encoded
 * once as %XX (S3 does not double-encode), QUERY the parameters sorted by
 * encoded name (then value) as name=value joined by '&' with both sides
 * encoded ('/' too), HEADERS the lower-cased names sorted with trimmed values
 * (inner runs of spaces collapsed), each followed by \n.
 */
#ifndef PEERLESS_SIGV4_H
#define PEERLESS_SIGV4_H

#include <stddef.h>

#include "peerless/status.h"

typedef struct pl_sigv4_pair {
    const char *name;
    const char *value; /* raw (unencoded) */
} pl_sigv4_pair;

typedef struct pl_sigv4_request {
    const char *method;         /* "GET", "PUT", ... */
    const char *path;           /* raw absolute path, e.g. "/bucket/a b" */
    const pl_sigv4_pair *query; /* raw parameters, any order; n_query may be 0 */
    size_t n_query;
    const pl_sigv4_pair *headers; /* every header to sign; must include host,
                                     x-amz-date and x-amz-content-sha256 */
    size_t n_headers;
    const char *payload_hash;   /* hex SHA-256 of the body, or
                                   "UNSIGNED-PAYLOAD" */
} pl_sigv4_request;

typedef struct pl_sigv4_key {
    const char *access_key;
    const char *secret_key;
    const char *region;         /* "us-east-1" */
    const char *service;        /* "s3" */
} pl_sigv4_key;

/* Everything a signature is made of; strings are malloc'd, free with
 * pl_sigv4_result_free. */
typedef struct pl_sigv4_result {
    char *canonical_request;
    char *string_to_sign;
    char signature[65];         /* lower-case hex */
    char *authorization;        /* value of the Authorization header */
} pl_sigv4_result;

/* Sign `req` at time `amz_date` ("20130524T000000Z", must equal the
 * x-amz-date header). On success fills *out (caller frees). */
int pl_sigv4_sign(const pl_sigv4_request *req, const pl_sigv4_key *key,
                  const char *amz_date, pl_sigv4_result *out, pl_err *err);

void pl_sigv4_result_free(pl_sigv4_result *r);

/* malloc'd RFC 3986 encoding of `s` (keep_slash: leave '/' as is);
 * NULL when out of memory. */
char *pl_sigv4_uri_encode(const char *s, int keep_slash);

/* malloc'd canonical query string of n raw parameters (sorted, encoded);
 * the same string is used in the request URL. NULL when out of memory. */
char *pl_sigv4_query(const pl_sigv4_pair *query, size_t n);

/* Lower-case hex SHA-256 of len bytes into out[65]. */
void pl_sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* "YYYYMMDDTHHMMSSZ" for the current UTC time into out[17]. */
void pl_sigv4_now(char out[17]);

/* AWS credentials as the S3 store finds them (store.h: environment, else
 * the shared credentials file profile): malloc'd strings the caller frees;
 * *token NULL when there is none. PL_ERR_ARG when none are configured. */
int pl_aws_credentials(char **access_key, char **secret_key, char **token, pl_err *err);

#endif
