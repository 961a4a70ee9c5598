/* client.c — Invoke API client over libcurl, with retries on throttling.
 * The request is the one real Lambda takes (minus SigV4, added later by
 * the AWS client on top of invoke_once). */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "faas/faas_impl.h"

#define DEFAULT_RETRIES 8

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    pl_faas_result *res = arg;
    size_t add = size * n;
    char *b = realloc(res->body, res->len + add + 1);
    if (!b)
        return 0;
    memcpy(b + res->len, data, add);
    res->body = b;
    res->len += add;
    b[res->len] = '\0';
    return add;
}

/* Keep the value of header `name` (case-insensitive) in *dst. */
static void grab_header(const char *line, size_t n, const char *name, char **dst)
{
    size_t k = strlen(name);
    if (n <= k + 1 || strncasecmp(line, name, k) || line[k] != ':')
        return;
    const char *v = line + k + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    free(*dst);
    *dst = strndup(v, (size_t)(end - v));
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    pl_faas_result *res = arg;
    grab_header(data, size * n, "X-Amz-Function-Error", &res->function_error);
    grab_header(data, size * n, "x-amzn-ErrorType", &res->error_type);
    return size * n;
}

static void result_reset(pl_faas_result *res)
{
    free(res->body);
    free(res->function_error);
    free(res->error_type);
    res->body = res->function_error = res->error_type = NULL;
    res->len = 0;
    res->http_status = 0;
}

static int invoke_once(const char *url, const char *type, const void *payload, size_t len, long timeout_ms,
                       pl_faas_result *res, pl_err *err)
{
    CURL *h = curl_easy_init();
    if (!h)
        return pl_err_set(err, PL_ERR_NOMEM, "faas invoke: curl_easy_init failed");
    char type_hdr[96];
    snprintf(type_hdr, sizeof type_hdr, "X-Amz-Invocation-Type: %s", type);
    struct curl_slist *hdrs = curl_slist_append(NULL, type_hdr);
    struct curl_slist *h2 = hdrs ? curl_slist_append(hdrs, "Content-Type: application/json") : NULL;
    struct curl_slist *h3 = h2 ? curl_slist_append(h2, "Expect:") : NULL;
    if (!h3) {
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);
        return pl_err_set(err, PL_ERR_NOMEM, "faas invoke: out of memory");
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload ? payload : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, res);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, res);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->http_status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK)
        return pl_err_set(err, PL_ERR_IO, "faas invoke %s: %s", url, curl_easy_strerror(rc));
    if (!res->body && !(res->body = calloc(1, 1)))
        return pl_err_set(err, PL_ERR_NOMEM, "faas invoke: out of memory");
    return PL_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int pl_faas_invoke_ex(const char *url_base, const char *function, const void *payload, size_t len,
                      const pl_faas_invoke_opts *opts, pl_faas_result *res, pl_err *err)
{
    memset(res, 0, sizeof *res);
    const char *type = opts && opts->invocation_type ? opts->invocation_type : "RequestResponse";
    long total_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 900000;
    int retries = !opts || opts->max_retries == 0 ? DEFAULT_RETRIES : opts->max_retries < 0 ? 0 : opts->max_retries;
    char *url = NULL;
    size_t base = strlen(url_base);
    while (base && url_base[base - 1] == '/')
        base--;
    if (asprintf(&url, "%.*s/2015-03-31/functions/%s/invocations", (int)base, url_base, function) < 0)
        return pl_err_set(err, PL_ERR_NOMEM, "faas invoke: out of memory");
    double t_end = now_s() + (double)total_ms / 1e3;
    long backoff_ms = 10;
    int rc;
    for (;;) {
        result_reset(res);
        long left = (long)((t_end - now_s()) * 1e3);
        rc = invoke_once(url, type, payload, len, left, res, err);
        if (rc != PL_OK || res->http_status != 429 || res->retries >= retries)
            break;
        if ((double)backoff_ms / 1e3 >= t_end - now_s())
            break;
        nanosleep(&(struct timespec){backoff_ms / 1000, (backoff_ms % 1000) * 1000000L}, NULL);
        backoff_ms = backoff_ms * 2 > 1000 ? 1000 : backoff_ms * 2;
        res->retries++;
    }
    free(url);
    return rc;
}

void pl_faas_result_free(pl_faas_result *res)
{
    if (res)
        result_reset(res);
}

/* The service's message from {"message": ...} or the raw body. */
static int status_error(const pl_faas_result *res, const char *function, pl_err *err)
{
    cJSON *j = cJSON_Parse(res->body);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    int st = res->http_status == 404 ? PL_ERR_NOTFOUND : res->http_status < 500 && res->http_status != 429 ? PL_ERR_ARG : PL_ERR_IO;
    pl_err_set(err, st, "faas invoke %s: HTTP %ld %s: %.300s", function, res->http_status,
               res->error_type ? res->error_type : "", cJSON_IsString(m) ? m->valuestring : res->body);
    cJSON_Delete(j);
    return st;
}

int pl_faas_invoke(const char *url_base, const char *function, const void *payload, size_t len,
                   char **response, size_t *response_len, char **function_error, long timeout_ms,
                   pl_err *err)
{
    *response = NULL;
    *response_len = 0;
    *function_error = NULL;
    pl_faas_result res;
    pl_faas_invoke_opts opts = {NULL, timeout_ms, 0};
    int rc = pl_faas_invoke_ex(url_base, function, payload, len, &opts, &res, err);
    if (rc == PL_OK && res.http_status != 200)
        rc = status_error(&res, function, err);
    if (rc == PL_OK) {
        *response = res.body;
        *response_len = res.len;
        *function_error = res.function_error;
        res.body = res.function_error = NULL;
    }
    pl_faas_result_free(&res);
    return rc;
}
