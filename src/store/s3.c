/* s3.c — the s3:// store backend: URL, endpoint, region and credentials
 * at open; put/get/list/delete/stat as path-style S3 REST calls.
 *
 * Object "KEY" of store s3://BUCKET/PREFIX is "PREFIX/KEY" in BUCKET, sent to
 * ENDPOINT/BUCKET/PREFIX/KEY. Listing uses ListObjectsV2 and follows
 * continuation tokens until IsTruncated is false.
 */
#include "store/s3_impl.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_impl.h"

/* ---- open: URL, endpoint, region, credentials ---------------------------- */

static int valid_bucket(const char *b, size_t n)
{
    if (n < 3 || n > 63 || !isalnum((unsigned char)b[0]) ||
        !isalnum((unsigned char)b[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)b[i]) && !isdigit((unsigned char)b[i]) &&
            b[i] != '.' && b[i] != '-')
            return 0;
    return 1;
}

/* "BUCKET[/PREFIX]" -> bucket, prefix ("" or "p/"), canonical URL. */
static int parse_location(pl_s3 *s, const char *rest, pl_err *err)
{
    const char *slash = strchr(rest, '/');
    size_t nb = slash ? (size_t)(slash - rest) : strlen(rest);
    if (nb == 0)
        return pl_err_set(err, PL_ERR_ARG, "store URL 's3://%s': missing "
                          "bucket (expected s3://BUCKET[/PREFIX])", rest);
    if (!valid_bucket(rest, nb))
        return pl_err_set(err, PL_ERR_ARG, "store URL 's3://%s': invalid "
                          "bucket name '%.*s' (3-63 characters: a-z 0-9 . -, "
                          "starting and ending with a letter or digit)",
                          rest, (int)nb, rest);
    const char *p = slash ? slash + 1 : "";
    size_t np = strlen(p);
    while (np && p[np - 1] == '/')
        np--;
    s->bucket = strndup(rest, nb);
    s->prefix = malloc(np + 2);
    s->url = malloc(nb + np + 8);
    if (!s->bucket || !s->prefix || !s->url)
        return pl_err_set(err, PL_ERR_NOMEM, "opening store 's3://%s'", rest);
    memcpy(s->prefix, p, np);
    s->prefix[np] = '\0';
    if (np) {
        pl_err sub = {0};
        if (pl_store_key_check(s->prefix, &sub))
            return pl_err_set(err, PL_ERR_ARG, "store URL 's3://%s': bad "
                              "prefix: %s", rest, sub.msg);
        memcpy(s->prefix + np, "/", 2);
    }
    sprintf(s->url, "s3://%.*s%s%.*s", (int)nb, rest, np ? "/" : "", (int)np, p);
    return PL_OK;
}

static int valid_host(const char *h, size_t n)
{
    if (n == 0)
        return 0;
    if (h[0] == '[') /* IPv6 literal */
        return n > 2 && h[n - 1] == ']' &&
               strspn(h + 1, "0123456789abcdefABCDEF:.") == n - 2;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-')
            return 0;
    return 1;
}

/* "http[s]://HOST[:PORT][/]" -> endpoint and Host header. */
static int parse_endpoint(pl_s3 *s, const char *ep, pl_err *err)
{
    int https = strncmp(ep, "https://", 8) == 0;
    if (!https && strncmp(ep, "http://", 7) != 0)
        return pl_err_set(err, PL_ERR_ARG, "S3 endpoint '%s': expected "
                          "http://HOST[:PORT] or https://HOST[:PORT]", ep);
    const char *h = ep + (https ? 8 : 7);
    size_t n = strlen(h);
    if (n && h[n - 1] == '/')
        n--;
    const char *end = h + n;
    const char *colon = NULL;
    for (const char *p = h; p < end; p++) {
        if (*p == '/' || *p == '?' || *p == '#' || *p == '@')
            return pl_err_set(err, PL_ERR_ARG, "S3 endpoint '%s': only "
                              "scheme://HOST[:PORT] is allowed (found '%c')",
                              ep, *p);
        if (*p == ':' && (h[0] != '[' || p[-1] == ']'))
            colon = p;
    }
    size_t nh = colon ? (size_t)(colon - h) : n;
    if (!valid_host(h, nh))
        return pl_err_set(err, PL_ERR_ARG, "S3 endpoint '%s': missing or "
                          "invalid host name", ep);
    long port = https ? 443 : 80;
    if (colon) {
        char *e;
        port = strtol(colon + 1, &e, 10);
        if (e != end || colon + 1 == end || port < 1 || port > 65535)
            return pl_err_set(err, PL_ERR_ARG, "S3 endpoint '%s': port must "
                              "be 1-65535", ep);
    }
    int dflt = port == (https ? 443 : 80);
    s->endpoint = strndup(ep, (size_t)(end - ep));
    s->host = malloc(nh + 8);
    if (!s->endpoint || !s->host)
        return pl_err_set(err, PL_ERR_NOMEM, "S3 endpoint '%s'", ep);
    /* curl omits a default port from Host; sign exactly what is sent. */
    if (dflt)
        snprintf(s->host, nh + 8, "%.*s", (int)nh, h);
    else
        snprintf(s->host, nh + 8, "%.*s:%ld", (int)nh, h, port);
    return PL_OK;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int set_region_endpoint(pl_s3 *s, const pl_store_opts *o, pl_err *err)
{
    const char *region = o->region ? o->region : env("AWS_REGION");
    if (!region)
        region = env("AWS_DEFAULT_REGION");
    if (!region)
        region = "us-east-1";
    if (!*region || strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
                        strlen(region))
        return pl_err_set(err, PL_ERR_ARG, "S3 region '%s': expected a name "
                          "such as us-east-1", region);
    s->region = strdup(region);
    if (!s->region)
        return pl_err_set(err, PL_ERR_NOMEM, "S3 region");
    const char *ep = o->s3_endpoint ? o->s3_endpoint : env("AWS_ENDPOINT_URL_S3");
    if (!ep)
        ep = env("AWS_ENDPOINT_URL");
    if (ep)
        return parse_endpoint(s, ep, err);
    char dflt[128];
    snprintf(dflt, sizeof dflt, "https://s3.%s.amazonaws.com", region);
    return parse_endpoint(s, dflt, err);
}

static char *trim(char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    size_t n = strlen(p);
    while (n && isspace((unsigned char)p[n - 1]))
        p[--n] = '\0';
    return p;
}

/* Reads `profile` from an AWS credentials INI file. Missing file: PL_OK with
 * nothing set. */
static int read_credentials_file(pl_s3 *s, const char *path,
                                 const char *profile, pl_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return PL_OK;
    char line[1024];
    int in = 0, st = PL_OK;
    while (!st && fgets(line, sizeof line, f)) {
        char *l = trim(line);
        if (*l == '[') {
            char *close = strchr(l, ']');
            in = close && (size_t)(close - l - 1) == strlen(profile) &&
                 strncmp(l + 1, profile, strlen(profile)) == 0;
            continue;
        }
        char *eq = strchr(l, '=');
        if (!in || !eq || *l == '#' || *l == ';')
            continue;
        *eq = '\0';
        char *k = trim(l), *v = trim(eq + 1);
        char **dst = strcmp(k, "aws_access_key_id") == 0       ? &s->access_key
                     : strcmp(k, "aws_secret_access_key") == 0 ? &s->secret_key
                     : strcmp(k, "aws_session_token") == 0     ? &s->token
                                                               : NULL;
        if (dst && !*dst && !(*dst = strdup(v)))
            st = pl_err_set(err, PL_ERR_NOMEM, "reading '%s'", path);
    }
    fclose(f);
    return st;
}

static int load_credentials(pl_s3 *s, pl_err *err)
{
    const char *id = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");
    if (id && secret) {
        const char *tok = env("AWS_SESSION_TOKEN");
        s->access_key = strdup(id);
        s->secret_key = strdup(secret);
        s->token = tok ? strdup(tok) : NULL;
        if (!s->access_key || !s->secret_key || (tok && !s->token))
            return pl_err_set(err, PL_ERR_NOMEM, "S3 credentials");
        return PL_OK;
    }
    const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
    char path[4096];
    if (env("AWS_SHARED_CREDENTIALS_FILE"))
        snprintf(path, sizeof path, "%s", env("AWS_SHARED_CREDENTIALS_FILE"));
    else
        snprintf(path, sizeof path, "%s/.aws/credentials",
                 env("HOME") ? env("HOME") : "");
    int st = read_credentials_file(s, path, profile, err);
    if (st)
        return st;
    if (!s->access_key || !s->secret_key)
        return pl_err_set(err, PL_ERR_ARG, "%s: no AWS credentials: set "
                          "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                          "add aws_access_key_id and aws_secret_access_key to "
                          "profile [%s] of %s", s->url, profile, path);
    return PL_OK;
}

int pl_aws_credentials(char **access_key, char **secret_key, char **token, pl_err *err)
{
    pl_s3 s;
    memset(&s, 0, sizeof s);
    s.url = (char *)"AWS";
    int st = load_credentials(&s, err);
    if (st) {
        free(s.access_key);
        free(s.secret_key);
        free(s.token);
        return st;
    }
    *access_key = s.access_key, *secret_key = s.secret_key, *token = s.token;
    return PL_OK;
}

static void s3_close(void *impl)
{
    pl_s3 *s = impl;
    if (!s)
        return;
    free(s->bucket);
    free(s->prefix);
    free(s->url);
    free(s->endpoint);
    free(s->host);
    free(s->region);
    free(s->access_key);
    free(s->secret_key);
    free(s->token);
    free(s->ca_bundle);
    free(s);
}

int pl_store_s3_open(const char *rest, const pl_store_opts *opts, void **impl,
                     char **url, pl_err *err)
{
    pl_s3 *s = calloc(1, sizeof *s);
    if (!s)
        return pl_err_set(err, PL_ERR_NOMEM, "opening store 's3://%s'", rest);
    s->connect_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000;
    s->total_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 600000;
    s->retries = opts->retries == 0 ? 3 : (opts->retries < 0 ? 0 : opts->retries);
    s->page_size = opts->list_page_size > 0 ? opts->list_page_size : 0;
    int st = parse_location(s, rest, err);
    if (!st)
        st = set_region_endpoint(s, opts, err);
    if (!st)
        st = load_credentials(s, err);
    const char *ca = env("AWS_CA_BUNDLE"); /* as the AWS CLI and SDKs */
    if (!st && ca && access(ca, R_OK) != 0)
        st = pl_err_set(err, PL_ERR_ARG, "AWS_CA_BUNDLE '%s': cannot read the CA file (%s)", ca,
                        strerror(errno));
    if (!st && ca && !(s->ca_bundle = strdup(ca)))
        st = pl_err_set(err, PL_ERR_NOMEM, "opening store '%s'", s->url);
    if (!st)
        st = pl_s3_global_init(err);
    if (!st && !(*url = strdup(s->url)))
        st = pl_err_set(err, PL_ERR_NOMEM, "opening store '%s'", s->url);
    if (st) {
        s3_close(s);
        return st;
    }
    *impl = s;
    return PL_OK;
}

/* ---- XML and errors ------------------------------------------------------ */

/* Decodes one entity at p (after '&') into out; returns its length through
 * *used, or 0 for an unknown entity. */
static size_t decode_entity(const char *p, const char *end, char *out,
                            size_t *used)
{
    static const struct { const char *name; char c; } named[] = {
        {"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''},
    };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        size_t n = strlen(named[i].name);
        if ((size_t)(end - p) >= n && memcmp(p, named[i].name, n) == 0) {
            out[0] = named[i].c;
            *used = n;
            return 1;
        }
    }
    if (p < end && *p == '#') {
        int hex = p + 1 < end && (p[1] == 'x' || p[1] == 'X');
        const char *d = p + 1 + hex;
        unsigned long cp = 0;
        const char *q = d;
        while (q < end && q - d < 8 && (hex ? isxdigit((unsigned char)*q)
                                            : isdigit((unsigned char)*q))) {
            cp = cp * (hex ? 16 : 10) +
                 (unsigned long)(isdigit((unsigned char)*q)
                                     ? *q - '0'
                                     : tolower((unsigned char)*q) - 'a' + 10);
            q++;
        }
        if (q == d || q >= end || *q != ';' || cp == 0 || cp > 0x10FFFF)
            return 0;
        *used = (size_t)(q - p) + 1;
        if (cp < 0x80) { out[0] = (char)cp; return 1; }
        if (cp < 0x800) {
            out[0] = (char)(0xC0 | (cp >> 6));
            out[1] = (char)(0x80 | (cp & 0x3F));
            return 2;
        }
        if (cp < 0x10000) {
            out[0] = (char)(0xE0 | (cp >> 12));
            out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[2] = (char)(0x80 | (cp & 0x3F));
            return 3;
        }
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

int pl_s3_xml_text(const char *p, const char *end, const char *tag,
                   char **out, pl_err *err)
{
    *out = NULL;
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = p ? memmem(p, (size_t)(end - p), open, strlen(open)) : NULL;
    if (!a)
        return PL_OK;
    a += strlen(open);
    const char *b = memmem(a, (size_t)(end - a), close, strlen(close));
    if (!b)
        return pl_err_set(err, PL_ERR_FORMAT, "S3 response: <%s> without "
                          "</%s>", tag, tag);
    char *s = malloc((size_t)(b - a) + 1); /* decoding never grows text */
    if (!s)
        return pl_err_set(err, PL_ERR_NOMEM, "parsing S3 response");
    size_t n = 0;
    for (const char *q = a; q < b;) {
        if (*q != '&') {
            s[n++] = *q++;
            continue;
        }
        size_t used = 0, w = decode_entity(q + 1, b, s + n, &used);
        if (!w) {
            free(s);
            return pl_err_set(err, PL_ERR_FORMAT, "S3 response: unknown XML "
                              "entity in <%s> at '%.12s'", tag, q);
        }
        n += w;
        q += 1 + used;
    }
    s[n] = '\0';
    *out = s;
    return PL_OK;
}

int pl_s3_http_error(const pl_s3 *s, const pl_s3_req *q, long status,
                     const char *body, size_t len, pl_err *err)
{
    char *code = NULL, *msg = NULL;
    if (body && len) {
        pl_s3_xml_text(body, body + len, "Code", &code, NULL);
        pl_s3_xml_text(body, body + len, "Message", &msg, NULL);
    }
    int st = PL_ERR_IO;
    if (status == 404 && (!code || strcmp(code, "NoSuchKey") == 0))
        st = PL_ERR_NOTFOUND;
    else if (code && strcmp(code, "NoSuchBucket") == 0)
        st = PL_ERR_ARG;
    pl_err_set(err, st, "%s%s%s: %s: HTTP %ld %s%s%s (bucket '%s' at %s)",
               s->url, q->key ? " key " : "", q->key ? q->key : "", q->method,
               status, code ? code : "(no S3 error code)", msg ? ": " : "",
               msg ? msg : "", s->bucket, s->endpoint);
    free(code);
    free(msg);
    return st;
}

/* ---- operations ---------------------------------------------------------- */

/* malloc'd "/bucket/prefix+key" (key may be NULL: "/bucket"). */
static char *object_path(const pl_s3 *s, const char *key)
{
    size_t n = strlen(s->bucket) + strlen(s->prefix) + (key ? strlen(key) : 0) + 3;
    char *p = malloc(n);
    if (!p)
        return NULL;
    if (key)
        snprintf(p, n, "/%s/%s%s", s->bucket, s->prefix, key);
    else
        snprintf(p, n, "/%s", s->bucket);
    return p;
}

/* Sends an object request; a status outside `ok1`/`ok2` becomes an error. */
static int object_call(pl_s3 *s, pl_s3_req *q, long ok1, long ok2,
                       pl_s3_resp *resp, pl_err *err)
{
    char *path = object_path(s, q->key);
    if (!path)
        return pl_err_set(err, PL_ERR_NOMEM, "%s %s", q->method, q->key);
    q->path = path;
    int st = pl_s3_perform(s, q, resp, err);
    free(path);
    if (!st && resp->status != ok1 && resp->status != ok2) {
        st = pl_s3_http_error(s, q, resp->status, (char *)resp->body,
                              resp->len, err);
        free(resp->body);
        resp->body = NULL;
    }
    return st;
}

static int s3_put(void *impl, const char *key, const void *data, size_t len,
                  pl_err *err)
{
    char hash[65];
    pl_sigv4_sha256_hex(data, len, hash);
    pl_s3_req q = {.method = "PUT", .key = key, .body = data, .body_len = len,
                   .body_hash = hash};
    pl_s3_resp r;
    int st = object_call(impl, &q, 200, 200, &r, err);
    if (!st)
        free(r.body);
    return st;
}

static int s3_get(void *impl, const char *key, void **data, size_t *len,
                  pl_err *err)
{
    pl_s3_req q = {.method = "GET", .key = key};
    pl_s3_resp r;
    int st = object_call(impl, &q, 200, 200, &r, err);
    if (st)
        return st;
    if (!r.body && !(r.body = malloc(1))) /* empty object */
        return pl_err_set(err, PL_ERR_NOMEM, "get '%s'", key);
    *data = r.body;
    *len = r.len;
    return PL_OK;
}

static int s3_del(void *impl, const char *key, pl_err *err)
{
    pl_s3_req q = {.method = "DELETE", .key = key};
    pl_s3_resp r;
    int st = object_call(impl, &q, 204, 200, &r, err);
    if (st == PL_ERR_NOTFOUND) /* some servers answer 404: already gone */
        return PL_OK;
    if (!st)
        free(r.body);
    return st;
}

static int s3_stat(void *impl, const char *key, int *exists, size_t *size,
                   pl_err *err)
{
    pl_s3_req q = {.method = "HEAD", .key = key};
    pl_s3_resp r;
    int st = object_call(impl, &q, 200, 200, &r, err);
    if (st == PL_ERR_NOTFOUND)
        return PL_OK;
    if (st)
        return st;
    free(r.body);
    *exists = 1;
    *size = r.content_length > 0 ? (size_t)r.content_length : 0;
    return PL_OK;
}

/* Appends the keys of one ListObjectsV2 page; *token becomes the next
 * continuation token or NULL on the last page. */
static int parse_list_page(const pl_s3 *s, const char *body, size_t len,
                           pl_store_keylist *out, char **token, pl_err *err)
{
    const char *p = body, *end = body + len;
    size_t np = strlen(s->prefix);
    int st = PL_OK;
    for (;;) {
        const char *c = memmem(p, (size_t)(end - p), "<Contents>", 10);
        const char *ce = c ? memmem(c, (size_t)(end - c), "</Contents>", 11) : NULL;
        if (!c || !ce)
            break;
        char *key = NULL;
        st = pl_s3_xml_text(c, ce, "Key", &key, err);
        if (!st && !key)
            st = pl_err_set(err, PL_ERR_FORMAT, "%s: list: <Contents> without "
                            "<Key>", s->url);
        if (!st && strncmp(key, s->prefix, np) == 0)
            st = pl_store_keylist_push(out, key + np, strlen(key) - np, err);
        free(key);
        if (st)
            return st;
        p = ce + 11;
    }
    char *trunc = NULL;
    st = pl_s3_xml_text(body, end, "IsTruncated", &trunc, err);
    int more = !st && trunc && strcmp(trunc, "true") == 0;
    free(trunc);
    if (!st && more) {
        st = pl_s3_xml_text(body, end, "NextContinuationToken", token, err);
        if (!st && (!*token || !**token))
            st = pl_err_set(err, PL_ERR_FORMAT, "%s: list: truncated page "
                            "without NextContinuationToken", s->url);
    }
    return st;
}

static int s3_list(void *impl, const char *prefix, pl_store_keylist *out,
                   pl_err *err)
{
    pl_s3 *s = impl;
    size_t n = strlen(s->prefix) + strlen(prefix) + 1;
    char *full = malloc(n), *token = NULL, page[24];
    if (!full)
        return pl_err_set(err, PL_ERR_NOMEM, "list '%s'", prefix);
    snprintf(full, n, "%s%s", s->prefix, prefix);
    snprintf(page, sizeof page, "%d", s->page_size);
    int st = PL_OK;
    do {
        pl_sigv4_pair qp[4] = {{"list-type", "2"}, {"prefix", full},
                               {"max-keys", page}, {"continuation-token", token}};
        size_t nq = s->page_size ? 3 : 2;
        if (token)
            qp[nq++] = qp[3];
        pl_s3_req q = {.method = "GET", .query = qp, .n_query = nq};
        pl_s3_resp r;
        char *next = NULL;
        st = object_call(s, &q, 200, 200, &r, err);
        if (!st) {
            st = parse_list_page(s, r.body ? (char *)r.body : "", r.len, out,
                                 &next, err);
            free(r.body);
        }
        if (!st && next && token && strcmp(next, token) == 0)
            st = pl_err_set(err, PL_ERR_FORMAT, "%s: list: server repeated "
                            "continuation token", s->url);
        free(token);
        token = next;
    } while (!st && token);
    free(token);
    free(full);
    return st;
}

const pl_store_vtable pl_store_s3_vtable = {
    "s3", s3_put, s3_get, s3_list, s3_del, s3_stat, s3_close,
};
