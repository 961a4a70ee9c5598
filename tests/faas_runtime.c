/* faas_runtime.c — a test runtime speaking the Lambda Runtime API
 * (#included by tests/test_faas.c and bench/bench_faas.c, which run it when
 * started as `BINARY runtime [init-error]`).
 *
 * Event {"op": ...}:  "noop" -> {} ; "echo" (default) -> {"pid", "request_id",
 * "deadline_ms", "arn", "trace", "env": {...}, "event": <event>};
 * "sleep" (ms) ; "alloc" (mb: allocate and touch) ; "crash" (exit 7) ;
 * "error" (POST .../error). Every op except noop answers like "echo". */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

typedef struct rt_msg {
    char *body;
    size_t len;
    char id[64], deadline[32], arn[200], trace[200];
} rt_msg;

static size_t rt_on_body(char *d, size_t s, size_t n, void *arg)
{
    rt_msg *m = arg;
    char *b = realloc(m->body, m->len + s * n + 1);
    if (!b)
        return 0;
    memcpy(b + m->len, d, s * n);
    m->body = b;
    m->len += s * n;
    b[m->len] = '\0';
    return s * n;
}

static void rt_hdr(const char *line, size_t n, const char *name, char *dst, size_t cap)
{
    size_t k = strlen(name);
    if (n <= k + 2 || strncasecmp(line, name, k) || line[k] != ':')
        return;
    size_t i = k + 1, j = n;
    while (i < j && line[i] == ' ')
        i++;
    while (j > i && (line[j - 1] == '\r' || line[j - 1] == '\n'))
        j--;
    snprintf(dst, cap, "%.*s", (int)(j - i), line + i);
}

static size_t rt_on_header(char *d, size_t s, size_t n, void *arg)
{
    rt_msg *m = arg;
    rt_hdr(d, s * n, "Lambda-Runtime-Aws-Request-Id", m->id, sizeof m->id);
    rt_hdr(d, s * n, "Lambda-Runtime-Deadline-Ms", m->deadline, sizeof m->deadline);
    rt_hdr(d, s * n, "Lambda-Runtime-Invoked-Function-Arn", m->arn, sizeof m->arn);
    rt_hdr(d, s * n, "Lambda-Runtime-Trace-Id", m->trace, sizeof m->trace);
    return s * n;
}

/* GET when body is NULL, else POST body. Returns the HTTP status or -1. */
static long rt_call(CURL *h, const char *url, const char *body, rt_msg *m)
{
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rt_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, m);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, rt_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, m);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    struct curl_slist *hd = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    long code = -1;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hd);
    return code;
}

static char *rt_answer(const rt_msg *m, const cJSON *event)
{
    static const char *vars[] = {"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
                                 "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_LOG_GROUP_NAME",
                                 "AWS_LAMBDA_LOG_STREAM_NAME", "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_REGION",
                                 "AWS_LAMBDA_RUNTIME_API"};
    cJSON *o = cJSON_CreateObject();
    cJSON *env = cJSON_AddObjectToObject(o, "env");
    cJSON_AddNumberToObject(o, "pid", (double)getpid());
    cJSON_AddStringToObject(o, "request_id", m->id);
    cJSON_AddStringToObject(o, "deadline_ms", m->deadline);
    cJSON_AddStringToObject(o, "arn", m->arn);
    cJSON_AddStringToObject(o, "trace", m->trace);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        cJSON_AddStringToObject(env, vars[i], getenv(vars[i]) ? getenv(vars[i]) : "");
    cJSON_AddItemToObject(o, "event", cJSON_Duplicate(event, 1));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Run one event; returns the body to post and sets *is_error. */
static char *rt_handle(const rt_msg *m, int *is_error)
{
    *is_error = 0;
    if (strstr(m->body, "\"noop\""))
        return strdup("{}");
    cJSON *ev = cJSON_Parse(m->body);
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "op"));
    double ms = cJSON_GetNumberValue(cJSON_GetObjectItem(ev, "ms"));
    double mb = cJSON_GetNumberValue(cJSON_GetObjectItem(ev, "mb"));
    op = op ? op : "echo";
    if (!strcmp(op, "sleep") && ms > 0)
        nanosleep(&(struct timespec){(time_t)(ms / 1000), (long)((long long)ms % 1000) * 1000000L}, NULL);
    if (!strcmp(op, "crash"))
        _exit(7);
    if (!strcmp(op, "alloc") && mb > 0) {
        volatile char *p = malloc((size_t)mb << 20);
        for (size_t i = 0; p && i < ((size_t)mb << 20); i += 4096)
            p[i] = 1;
        free((void *)p);
    }
    char *out;
    if (!strcmp(op, "error")) {
        *is_error = 1;
        out = strdup("{\"errorMessage\":\"asked to fail\",\"errorType\":\"TestError\",\"stackTrace\":[]}");
    } else {
        out = rt_answer(m, ev);
    }
    cJSON_Delete(ev);
    return out;
}

static int faas_runtime_main(int init_error)
{
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    CURL *h = curl_easy_init();
    if (!api || !h)
        return 2;
    char url[512];
    rt_msg m;
    memset(&m, 0, sizeof m);
    if (init_error) {
        snprintf(url, sizeof url, "http://%s/2018-06-01/runtime/init/error", api);
        rt_call(h, url, "{\"errorMessage\":\"init failed on purpose\",\"errorType\":\"Runtime.TestInit\"}", &m);
        return 1;
    }
    for (;;) {
        free(m.body);
        memset(&m, 0, sizeof m);
        snprintf(url, sizeof url, "http://%s/2018-06-01/runtime/invocation/next", api);
        if (rt_call(h, url, NULL, &m) != 200 || !m.body)
            return 3;
        int is_error;
        char *out = rt_handle(&m, &is_error);
        snprintf(url, sizeof url, "http://%s/2018-06-01/runtime/invocation/%s/%s", api, m.id,
                 is_error ? "error" : "response");
        rt_msg ack;
        memset(&ack, 0, sizeof ack);
        long code = rt_call(h, url, out ? out : "{}", &ack);
        free(ack.body);
        free(out);
        if (code != 202)
            return 4;
    }
}
