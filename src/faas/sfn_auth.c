/* sfn_auth.c — SigV4 Authorization checks on the platform's APIs
 * (pl_faas_require_sigv4): the header's form and credential scope, the
 * x-amz-date skew, and with a configured secret the signature itself,
 * recomputed with src/store/sigv4.c from what the request carried. */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "faas/faas_impl.h"
#include "store/sigv4.h"

#define MAX_SIGNED 24
#define MAX_QUERY 32
#define SKEW_S (15 * 60)

static int deny(faas_auth_error *e, unsigned status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int deny(faas_auth_error *e, unsigned status, const char *type, const char *fmt, ...)
{
    e->status = status;
    snprintf(e->type, sizeof e->type, "%s", type);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* The value of "NAME=value" among the comma-separated parameters of an
 * Authorization header, copied into out[cap]; 0 if found. */
static int auth_param(const char *params, const char *name, char *out, size_t cap)
{
    size_t k = strlen(name);
    for (const char *s = params; s && *s;) {
        while (*s == ' ' || *s == ',')
            s++;
        size_t n = strcspn(s, ",");
        if (n > k && !strncmp(s, name, k) && s[k] == '=') {
            size_t v = n - k - 1;
            while (v && s[k + 1 + v - 1] == ' ')
                v--;
            if (v == 0 || v >= cap)
                return -1;
            memcpy(out, s + k + 1, v);
            out[v] = '\0';
            return 0;
        }
        s += n;
    }
    return -1;
}

/* "20240101T000000Z" to seconds since the epoch, -1 if malformed. */
static long long amz_time(const char *d)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z' ||
        sscanf(d, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm);
}

typedef struct query_acc {
    pl_sigv4_pair q[MAX_QUERY];
    size_t n;
    int overflow;
} query_acc;

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    query_acc *a = cls;
    if (a->n == MAX_QUERY) {
        a->overflow = 1;
        return MHD_NO;
    }
    a->q[a->n++] = (pl_sigv4_pair){key, value ? value : ""};
    return MHD_YES;
}

/* Recompute the signature from the request as received. */
static int verify(struct MHD_Connection *c, const char *method, const char *url, const faas_req *r,
                  const char *ak, const char *sk, const char *region, const char *service, const char *date,
                  char *signed_list, const char *signature, faas_auth_error *e)
{
    pl_sigv4_pair h[MAX_SIGNED];
    size_t nh = 0;
    for (char *save = NULL, *name = strtok_r(signed_list, ";", &save); name; name = strtok_r(NULL, ";", &save)) {
        const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
        if (nh == MAX_SIGNED)
            return deny(e, 400, "IncompleteSignatureException", "more than %d signed headers", MAX_SIGNED);
        if (!v)
            return deny(e, 400, "IncompleteSignatureException", "signed header '%s' is not in the request", name);
        h[nh++] = (pl_sigv4_pair){name, v};
    }
    query_acc qa;
    memset(&qa, 0, sizeof qa);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, on_arg, &qa);
    if (qa.overflow)
        return deny(e, 400, "IncompleteSignatureException", "more than %d query parameters", MAX_QUERY);
    char hash[65];
    const char *ph = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-amz-content-sha256");
    if (ph && !strcmp(ph, "UNSIGNED-PAYLOAD"))
        snprintf(hash, sizeof hash, "%s", ph);
    else
        pl_sigv4_sha256_hex(r->buf ? r->buf : "", r->len, hash);
    /* The URL arrives decoded; services other than S3 sign the encoded path
     * encoded once more, which pl_sigv4_sign does to what it is given. */
    char *path = pl_sigv4_uri_encode(url, 1);
    pl_sigv4_request req = {method, path, qa.q, qa.n, h, nh, hash};
    pl_sigv4_key key = {ak, sk, region, service};
    pl_sigv4_result sr;
    memset(&sr, 0, sizeof sr);
    pl_err err = {0, ""};
    int st = path ? pl_sigv4_sign(&req, &key, date, &sr, &err) : PL_ERR_NOMEM;
    int same = !st && !strcmp(sr.signature, signature);
    pl_sigv4_result_free(&sr);
    free(path);
    if (st)
        return deny(e, 500, "ServiceException", "verifying the signature: %s", err.msg[0] ? err.msg : "out of memory");
    if (!same)
        return deny(e, 403, "InvalidSignatureException",
                    "The request signature we calculated does not match the signature you provided. Check your AWS "
                    "Secret Access Key and signing method.");
    return 0;
}

int faas_auth_check(pl_faas *p, struct MHD_Connection *c, const char *method, const char *url, const faas_req *r,
                    const char *service, faas_auth_error *e)
{
    char ak[128] = "", sk[128] = "";
    pthread_mutex_lock(&p->mu);
    int on = p->sigv4, has_key = p->sigv4_ak != NULL;
    if (has_key) {
        snprintf(ak, sizeof ak, "%s", p->sigv4_ak);
        snprintf(sk, sizeof sk, "%s", p->sigv4_sk);
    }
    pthread_mutex_unlock(&p->mu);
    if (!on)
        return 0;
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!auth || !*auth)
        return deny(e, 403, "MissingAuthenticationTokenException",
                    "Missing Authentication Token: this platform requires SigV4-signed requests (service '%s')",
                    service);
    static const char algo[] = "AWS4-HMAC-SHA256 ";
    if (strncmp(auth, algo, sizeof algo - 1))
        return deny(e, 400, "IncompleteSignatureException",
                    "Authorization header '%.40s...': expected 'AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., "
                    "Signature=...'",
                    auth);
    const char *params = auth + sizeof algo - 1;
    char cred[300], signed_list[600], sig[80];
    if (auth_param(params, "Credential", cred, sizeof cred) || auth_param(params, "SignedHeaders", signed_list, sizeof signed_list) ||
        auth_param(params, "Signature", sig, sizeof sig))
        return deny(e, 400, "IncompleteSignatureException",
                    "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters");
    if (strlen(sig) != 64 || strspn(sig, "0123456789abcdef") != 64)
        return deny(e, 400, "IncompleteSignatureException", "Signature '%s': expected 64 lower-case hex digits", sig);
    /* Credential=AK/DATE/REGION/SERVICE/aws4_request */
    char *parts[5] = {0}, *save = NULL;
    int np = 0;
    for (char *t = strtok_r(cred, "/", &save); t && np < 5; t = strtok_r(NULL, "/", &save))
        parts[np++] = t;
    if (np != 5 || strtok_r(NULL, "/", &save) || strlen(parts[1]) != 8 || strcmp(parts[4], "aws4_request"))
        return deny(e, 400, "IncompleteSignatureException",
                    "Credential: expected ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request");
    if (strcmp(parts[2], p->region))
        return deny(e, 403, "InvalidSignatureException", "Credential should be scoped to a valid region, not '%s' (this platform's region is '%s').",
                    parts[2], p->region);
    if (strcmp(parts[3], service))
        return deny(e, 403, "InvalidSignatureException", "Credential should be scoped to correct service: '%s', not '%s'.",
                    service, parts[3]);
    char lower[sizeof signed_list + 2];
    snprintf(lower, sizeof lower, ";%s;", signed_list);
    if (!strstr(lower, ";host;"))
        return deny(e, 400, "IncompleteSignatureException", "SignedHeaders '%s' must include host", signed_list);
    const char *date = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-amz-date");
    long long t = amz_time(date);
    if (t < 0)
        return deny(e, 400, "IncompleteSignatureException", "x-amz-date '%s': expected YYYYMMDDTHHMMSSZ",
                    date ? date : "(missing)");
    if (strncmp(date, parts[1], 8))
        return deny(e, 403, "InvalidSignatureException", "Credential date %s does not match x-amz-date %s", parts[1],
                    date);
    long long now = (long long)time(NULL);
    if (t < now - SKEW_S || t > now + SKEW_S)
        return deny(e, 403, "InvalidSignatureException", "Signature expired: %s is not within 15 minutes of the platform's clock",
                    date);
    if (!has_key)
        return 0;
    if (strcmp(parts[0], ak))
        return deny(e, 403, "UnrecognizedClientException",
                    "The security token included in the request is invalid: unknown access key id '%s'", parts[0]);
    return verify(c, method, url, r, ak, sk, p->region, service, date, signed_list, sig, e);
}
