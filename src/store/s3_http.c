/* s3_http.c — sending one S3 request through libcurl: SigV4 headers,
 * timeouts, retries with backoff, complete-body checks.
 *
 * Bodies are read from / written into memory: a put streams the caller's
 * buffer as is, a get allocates the result once from Content-Length.
 */
#include "store/s3_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>


#define EMPTY_SHA256 \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ERROR_BODY_MAX 65536

/* The response being received. */
typedef struct s3_resp {
    long status;
    unsigned char *body;
    size_t len, cap;
    curl_off_t content_length; /* -1 when unknown */
    size_t sent;               /* upload position */
    const pl_s3_req *req;
    CURL *curl;
    int oom;
} s3_resp;

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init;

static void curl_init_once(void)
{
    g_curl_init = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int pl_s3_global_init(pl_err *err)
{
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init != CURLE_OK)
        return pl_err_set(err, PL_ERR_IO, "libcurl initialisation failed: %s",
                          curl_easy_strerror(g_curl_init));
    return PL_OK;
}

static int grow(s3_resp *r, size_t need)
{
    if (need <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 4096;
    if (r->cap == 0 && r->status / 100 == 2 && r->content_length >= 0 &&
        (size_t)r->content_length >= need)
        cap = (size_t)r->content_length; /* one exact allocation */
    while (cap < need)
        cap *= 2;
    unsigned char *p = realloc(r->body, cap);
    if (!p)
        return -1;
    r->body = p;
    r->cap = cap;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    s3_resp *r = ud;
    size_t n = size * nmemb;
    if (r->cap == 0) {
        curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(r->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
                          &r->content_length);
    }
    size_t keep = n;
    if (r->status / 100 != 2 && r->len + keep > ERROR_BODY_MAX)
        keep = r->len < ERROR_BODY_MAX ? ERROR_BODY_MAX - r->len : 0;
    if (grow(r, r->len + keep + 1) != 0) {
        r->oom = 1;
        return 0; /* aborts the transfer */
    }
    memcpy(r->body + r->len, data, keep);
    r->len += keep;
    r->body[r->len] = '\0';
    return n;
}

static size_t on_upload(char *buf, size_t size, size_t nmemb, void *ud)
{
    s3_resp *r = ud;
    size_t left = r->req->body_len - r->sent;
    size_t n = size * nmemb < left ? size * nmemb : left;
    memcpy(buf, r->req->body + r->sent, n);
    r->sent += n;
    return n;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
    s3_resp *r = ud;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > r->req->body_len)
        return CURL_SEEKFUNC_FAIL;
    r->sent = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* Adds "Name: value" to the list; returns 0 on failure. */
static int add_header(struct curl_slist **list, const char *name,
                      const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (!line)
        return 0;
    snprintf(line, n, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*list, line);
    free(line);
    if (!l)
        return 0;
    *list = l;
    return 1;
}

/* Signs the request now and builds the header list. */
static int signed_headers(const pl_s3 *s, const pl_s3_req *q,
                          struct curl_slist **out, pl_err *err)
{
    char date[17];
    pl_sigv4_now(date);
    pl_sigv4_pair h[4] = {
        {"host", s->host},
        {"x-amz-content-sha256", q->body_hash},
        {"x-amz-date", date},
        {"x-amz-security-token", s->token},
    };
    size_t nh = s->token ? 4 : 3;
    pl_sigv4_request sr = {q->method, q->path, q->query, q->n_query, h, nh,
                           q->body_hash};
    pl_sigv4_key k = {s->access_key, s->secret_key, s->region, "s3"};
    pl_sigv4_result res;
    int st = pl_sigv4_sign(&sr, &k, date, &res, err);
    if (st)
        return st;
    struct curl_slist *l = NULL;
    int ok = add_header(&l, "Host", s->host) &&
             add_header(&l, "x-amz-content-sha256", q->body_hash) &&
             add_header(&l, "x-amz-date", date) &&
             (!s->token || add_header(&l, "x-amz-security-token", s->token)) &&
             add_header(&l, "Authorization", res.authorization) &&
             (l = curl_slist_append(l, "Expect:")) != NULL;
    pl_sigv4_result_free(&res);
    if (!ok) {
        curl_slist_free_all(l);
        return pl_err_set(err, PL_ERR_NOMEM, "building S3 request headers");
    }
    *out = l;
    return PL_OK;
}

/* The request URL: endpoint + encoded path + "?" + canonical query. */
static char *request_url(const pl_s3 *s, const pl_s3_req *q)
{
    char *path = pl_sigv4_uri_encode(q->path, 1);
    char *query = pl_sigv4_query(q->query, q->n_query);
    char *url = NULL;
    if (path && query) {
        size_t n = strlen(s->endpoint) + strlen(path) + strlen(query) + 2;
        url = malloc(n);
        if (url)
            snprintf(url, n, "%s%s%s%s", s->endpoint, path, *query ? "?" : "",
                     query);
    }
    free(path);
    free(query);
    return url;
}

static void setup_transfer(CURL *c, const pl_s3 *s, const pl_s3_req *q,
                           s3_resp *r)
{
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s->connect_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->total_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (s->ca_bundle)
        curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_bundle);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    if (strcmp(q->method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(c, CURLOPT_READDATA, r);
        curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, r);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
    } else if (strcmp(q->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(q->method, "DELETE") == 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
}

/* One attempt. Returns PL_OK when an HTTP response arrived complete (any
 * status); *transient tells whether a failure may be retried. */
static int attempt(const pl_s3 *s, const pl_s3_req *q, s3_resp *r, int *transient,
                   pl_err *err)
{
    *transient = 0;
    struct curl_slist *hdrs = NULL;
    int st = signed_headers(s, q, &hdrs, err);
    if (st)
        return st;
    char *url = request_url(s, q);
    CURL *c = url ? curl_easy_init() : NULL;
    if (!c) {
        free(url);
        curl_slist_free_all(hdrs);
        return pl_err_set(err, PL_ERR_NOMEM, "creating S3 request");
    }
    char ebuf[CURL_ERROR_SIZE] = "";
    r->curl = c;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    setup_transfer(c, s, q, r);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r->content_length);
    if (r->oom) {
        st = pl_err_set(err, PL_ERR_NOMEM, "%s %s: response body of %lld "
                        "bytes", q->method, url, (long long)r->content_length);
    } else if (rc != CURLE_OK) {
        /* a bad URL or a certificate that does not verify will not heal */
        *transient = rc != CURLE_URL_MALFORMAT && rc != CURLE_UNSUPPORTED_PROTOCOL &&
                     rc != CURLE_PEER_FAILED_VERIFICATION && rc != CURLE_SSL_CACERT_BADFILE &&
                     rc != CURLE_SSL_CERTPROBLEM;
        st = pl_err_set(err, PL_ERR_IO, "%s %s: %s", q->method, url,
                        ebuf[0] ? ebuf : curl_easy_strerror(rc));
    } else if (r->status / 100 == 2 && strcmp(q->method, "HEAD") != 0 &&
               r->content_length >= 0 && (size_t)r->content_length != r->len) {
        *transient = 1;
        st = pl_err_set(err, PL_ERR_IO, "%s %s: received %zu of %lld bytes",
                        q->method, url, r->len, (long long)r->content_length);
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    free(url);
    return st;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int pl_s3_perform(const pl_s3 *s, const pl_s3_req *req, pl_s3_resp *out,
                  pl_err *err)
{
    pl_s3_req q = *req;
    if (!q.body_hash)
        q.body_hash = EMPTY_SHA256;
    memset(out, 0, sizeof *out);
    for (int i = 0;; i++) {
        s3_resp r = {.content_length = -1, .req = &q};
        int transient = 0;
        int st = attempt(s, &q, &r, &transient, err);
        if (!st && (r.status >= 500 || r.status == 429)) {
            transient = 1;
            st = pl_s3_http_error(s, &q, r.status, (char *)r.body, r.len, err);
        }
        if (st && transient && i < s->retries) {
            free(r.body);
            long backoff = 100L << (i < 5 ? i : 5);
            sleep_ms(backoff < 2000 ? backoff : 2000);
            continue;
        }
        if (st) {
            free(r.body);
            if (transient && s->retries > 0)
                pl_err_wrap(err, st, "after %d attempts", i + 1);
            return st;
        }
        out->status = r.status;
        out->body = r.body;
        out->len = r.len;
        out->content_length = (long long)r.content_length;
        return PL_OK;
    }
}
