/* sigv4.c — AWS Signature Version 4 (HMAC-SHA256 via OpenSSL). */
#include "store/sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/strbuf.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

static void encode_into(pl_sb *b, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
            (keep_slash && c == '/')) {
            pl_sb_add(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            pl_sb_add(b, e, 3);
        }
    }
}

char *pl_sigv4_uri_encode(const char *s, int keep_slash)
{
    pl_sb b = {0};
    encode_into(&b, s, keep_slash);
    return pl_sb_done(&b);
}

typedef struct enc_pair {
    char *name, *value;
} enc_pair;

static int cmp_enc_pair(const void *a, const void *b)
{
    const enc_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

char *pl_sigv4_query(const pl_sigv4_pair *query, size_t n)
{
    enc_pair *e = calloc(n ? n : 1, sizeof *e);
    if (!e)
        return NULL;
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        e[i].name = pl_sigv4_uri_encode(query[i].name, 0);
        e[i].value = pl_sigv4_uri_encode(query[i].value ? query[i].value : "", 0);
        ok = e[i].name && e[i].value;
    }
    pl_sb b = {0};
    if (ok) {
        /* Sorting by encoded name is what AWS specifies (byte order). */
        qsort(e, n, sizeof *e, cmp_enc_pair);
        for (size_t i = 0; i < n; i++) {
            if (i)
                pl_sb_str(&b, "&");
            pl_sb_str(&b, e[i].name);
            pl_sb_str(&b, "=");
            pl_sb_str(&b, e[i].value);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(e[i].name);
        free(e[i].value);
    }
    free(e);
    if (!ok) {
        free(b.p);
        return NULL;
    }
    return pl_sb_done(&b);
}

static void to_hex(const unsigned char *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void pl_sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    to_hex(md, 32, out);
}

void pl_sigv4_now(char out[17])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static void hmac(const unsigned char *key, size_t klen, const char *msg,
                 unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg),
         out, &n);
}

typedef struct canon_header {
    char *name;        /* lower-cased */
    const char *value; /* raw, trimmed when written */
} canon_header;

static int cmp_header(const void *a, const void *b)
{
    return strcmp(((const canon_header *)a)->name,
                  ((const canon_header *)b)->name);
}

/* Appends "value" trimmed, with inner runs of spaces collapsed to one. */
static void add_trimmed(pl_sb *b, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == ' ' && i && v[i - 1] == ' ')
            continue;
        pl_sb_add(b, v + i, 1);
    }
}

/* Appends the canonical headers block and fills `signed_hdrs`. */
static int add_headers(pl_sb *b, pl_sb *signed_hdrs,
                       const pl_sigv4_request *req, pl_err *err)
{
    size_t n = req->n_headers;
    canon_header *h = calloc(n ? n : 1, sizeof *h);
    if (!h)
        return pl_err_set(err, PL_ERR_NOMEM, "signing request");
    int st = PL_OK;
    for (size_t i = 0; i < n && !st; i++) {
        h[i].name = strdup(req->headers[i].name);
        h[i].value = req->headers[i].value;
        if (!h[i].name)
            st = pl_err_set(err, PL_ERR_NOMEM, "signing request");
        for (char *p = h[i].name; p && *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    if (!st) {
        qsort(h, n, sizeof *h, cmp_header);
        for (size_t i = 0; i < n; i++) {
            pl_sb_str(b, h[i].name);
            pl_sb_str(b, ":");
            add_trimmed(b, h[i].value);
            pl_sb_str(b, "\n");
            if (i)
                pl_sb_str(signed_hdrs, ";");
            pl_sb_str(signed_hdrs, h[i].name);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(h[i].name);
    free(h);
    return st;
}

static char *canonical_request(const pl_sigv4_request *req, char **signed_out,
                               pl_err *err)
{
    pl_sb b = {0}, sh = {0};
    char *q = pl_sigv4_query(req->query, req->n_query);
    if (!q) {
        pl_err_set(err, PL_ERR_NOMEM, "signing request");
        return NULL;
    }
    pl_sb_str(&b, req->method);
    pl_sb_str(&b, "\n");
    encode_into(&b, req->path, 1);
    pl_sb_str(&b, "\n");
    pl_sb_str(&b, q);
    pl_sb_str(&b, "\n");
    free(q);
    if (add_headers(&b, &sh, req, err)) {
        free(b.p);
        free(sh.p);
        return NULL;
    }
    pl_sb_str(&b, "\n");
    pl_sb_add(&b, sh.p ? sh.p : "", sh.n);
    pl_sb_str(&b, "\n");
    pl_sb_str(&b, req->payload_hash);
    char *cr = pl_sb_done(&b);
    *signed_out = pl_sb_done(&sh);
    if (!cr || !*signed_out) {
        free(cr);
        free(*signed_out);
        pl_err_set(err, PL_ERR_NOMEM, "signing request");
        return NULL;
    }
    return cr;
}

#define SECRET_MAX 256

/* The signing key: HMAC chain over date, region, service, "aws4_request".
 * The caller has checked strlen(secret_key) <= SECRET_MAX. */
static void signing_key(const pl_sigv4_key *k, const char *date,
                        unsigned char out[32])
{
    size_t ns = strlen(k->secret_key);
    unsigned char first[4 + SECRET_MAX], a[32], b[32];
    memcpy(first, "AWS4", 4);
    memcpy(first + 4, k->secret_key, ns);
    hmac(first, ns + 4, date, a);
    hmac(a, 32, k->region, b);
    hmac(b, 32, k->service, a);
    hmac(a, 32, "aws4_request", out);
}

int pl_sigv4_sign(const pl_sigv4_request *req, const pl_sigv4_key *key,
                  const char *amz_date, pl_sigv4_result *out, pl_err *err)
{
    memset(out, 0, sizeof *out);
    if (strlen(amz_date) != 16)
        return pl_err_set(err, PL_ERR_ARG, "SigV4: bad x-amz-date '%s' "
                          "(expected YYYYMMDDTHHMMSSZ)", amz_date);
    if (strlen(key->secret_key) > SECRET_MAX)
        return pl_err_set(err, PL_ERR_ARG, "SigV4: secret access key longer "
                          "than %d characters", SECRET_MAX);
    char date[9];
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    char *signed_hdrs = NULL;
    out->canonical_request = canonical_request(req, &signed_hdrs, err);
    if (!out->canonical_request)
        return err ? err->status : PL_ERR_NOMEM;
    char cr_hash[65];
    pl_sigv4_sha256_hex(out->canonical_request,
                        strlen(out->canonical_request), cr_hash);
    size_t n = strlen(date) + strlen(key->region) + strlen(key->service) +
               strlen(signed_hdrs) + strlen(key->access_key) + 256;
    out->string_to_sign = malloc(n);
    out->authorization = malloc(n);
    if (!out->string_to_sign || !out->authorization) {
        free(signed_hdrs);
        pl_sigv4_result_free(out);
        return pl_err_set(err, PL_ERR_NOMEM, "signing request");
    }
    snprintf(out->string_to_sign, n, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
             amz_date, date, key->region, key->service, cr_hash);
    unsigned char k[32], sig[32];
    signing_key(key, date, k);
    hmac(k, 32, out->string_to_sign, sig);
    to_hex(sig, 32, out->signature);
    snprintf(out->authorization, n,
             "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request,"
             "SignedHeaders=%s,Signature=%s",
             key->access_key, date, key->region, key->service, signed_hdrs,
             out->signature);
    free(signed_hdrs);
    return PL_OK;
}

void pl_sigv4_result_free(pl_sigv4_result *r)
{
    if (!r)
        return;
    free(r->canonical_request);
    free(r->string_to_sign);
    free(r->authorization);
    r->canonical_request = r->string_to_sign = r->authorization = NULL;
}
