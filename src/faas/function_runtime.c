/* function_runtime.c — the Lambda Runtime API loop of `peerless function`
 * (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html). */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "peerless/function.h"

#define RT_PREFIX "/2018-06-01/runtime"
#define RT_POST_TIMEOUT_MS 30000L

typedef struct rt_msg {
    char *body;
    size_t len;
    int oom;
    char id[128];
} rt_msg;

static size_t on_body(char *d, size_t s, size_t n, void *arg)
{
    rt_msg *m = arg;
    char *b = realloc(m->body, m->len + s * n + 1);
    if (!b) {
        m->oom = 1;
        return 0;
    }
    memcpy(b + m->len, d, s * n);
    m->body = b;
    m->len += s * n;
    b[m->len] = '\0';
    return s * n;
}

static size_t on_header(char *d, size_t s, size_t n, void *arg)
{
    rt_msg *m = arg;
    static const char name[] = "Lambda-Runtime-Aws-Request-Id:";
    size_t k = sizeof name - 1, len = s * n;
    if (len > k && !strncasecmp(d, name, k)) {
        size_t i = k, j = len;
        while (i < j && (d[i] == ' ' || d[i] == '\t'))
            i++;
        while (j > i && (d[j - 1] == '\r' || d[j - 1] == '\n' || d[j - 1] == ' '))
            j--;
        snprintf(m->id, sizeof m->id, "%.*s", (int)(j - i), d + i);
    }
    return len;
}

/* GET (body NULL) or POST `body` to http://API/PATH; returns the HTTP status
 * or -1 when the request failed. error_type adds
 * Lambda-Runtime-Function-Error-Type. */
static long rt_call(CURL *h, const char *api, const char *path, const char *body, const char *error_type,
                    rt_msg *m)
{
    char url[1024], hdr[160];
    snprintf(url, sizeof url, "http://%s%s", api, path);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, m);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, m);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    struct curl_slist *hd = curl_slist_append(NULL, "Expect:");
    if (hd && body)
        hd = curl_slist_append(hd, "Content-Type: application/json");
    if (hd && error_type) {
        snprintf(hdr, sizeof hdr, "Lambda-Runtime-Function-Error-Type: %.100s", error_type);
        hd = curl_slist_append(hd, hdr);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, RT_POST_TIMEOUT_MS);
    }
    long code = -1;
    if (hd && curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hd);
    return code;
}

/* Lambda's error document; NULL when out of memory. */
static char *error_doc(const char *type, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, "errorMessage", msg) && cJSON_AddStringToObject(o, "errorType", type) &&
        cJSON_AddArrayToObject(o, "stackTrace"))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static long post_error(CURL *h, const char *api, const char *path, const char *type, const char *msg)
{
    char *doc = error_doc(type, msg);
    rt_msg m = {0};
    long code = rt_call(h, api, path, doc ? doc : "{}", type, &m);
    free(m.body);
    free(doc);
    return code;
}

/* Serve one event; PL_ERR_IO when the Runtime API did not accept the result. */
static int serve_one(CURL *h, const char *api, pl_fn *f, rt_msg *ev, pl_err *err)
{
    char *resp = NULL, path[256];
    const char *etype = NULL;
    pl_err e = {0, ""};
    int st = pl_fn_handle(f, ev->body ? ev->body : "", ev->len, &resp, &etype, &e);
    long code;
    if (!st) {
        rt_msg m = {0};
        snprintf(path, sizeof path, RT_PREFIX "/invocation/%s/response", ev->id);
        code = rt_call(h, api, path, resp, NULL, &m);
        free(m.body);
    } else {
        fprintf(stderr, "peerless function: request %s: %s: %s\n", ev->id, etype, e.msg);
        snprintf(path, sizeof path, RT_PREFIX "/invocation/%s/error", ev->id);
        code = post_error(h, api, path, etype, e.msg[0] ? e.msg : pl_status_str(st));
    }
    free(resp);
    if (code != 202)
        return pl_err_set(err, PL_ERR_IO, "Runtime API %s: posting the result of request %s gave HTTP %ld", api,
                          ev->id, code);
    return PL_OK;
}

static int loop(CURL *h, const char *api, pl_fn *f, pl_err *err)
{
    for (;;) {
        rt_msg ev = {0};
        long code = rt_call(h, api, RT_PREFIX "/invocation/next", NULL, NULL, &ev);
        int st = PL_OK;
        if (code != 200 || !ev.id[0] || ev.oom)
            st = pl_err_set(err, PL_ERR_IO, "Runtime API %s: GET invocation/next gave %s %ld%s", api,
                            code < 0 ? "no answer," : "HTTP", code, ev.id[0] ? "" : " without a request id");
        if (!st)
            st = serve_one(h, api, f, &ev, err);
        free(ev.body);
        if (st)
            return st;
    }
}

int pl_fn_runtime_loop(const char *runtime_api, const pl_fn_config *cfg, pl_err *err)
{
    if (!runtime_api || !runtime_api[0] || strlen(runtime_api) > 200)
        return pl_err_set(err, PL_ERR_ARG, "AWS_LAMBDA_RUNTIME_API is not set (expected host:port): "
                                           "peerless function runs inside Lambda or the local platform");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return pl_err_set(err, PL_ERR_IO, "curl_global_init failed");
    CURL *h = curl_easy_init();
    if (!h)
        return pl_err_set(err, PL_ERR_NOMEM, "curl_easy_init failed");
    pl_fn *f = NULL;
    int st = pl_fn_create(cfg, &f, err);
    if (st)
        post_error(h, runtime_api, RT_PREFIX "/init/error", "Runtime.InitError", err ? err->msg : "init failed");
    else
        st = loop(h, runtime_api, f, err);
    pl_fn_destroy(f);
    curl_easy_cleanup(h);
    return st;
}
