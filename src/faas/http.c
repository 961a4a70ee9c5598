/* http.c — libmicrohttpd daemons and the Lambda Invoke API
 * (POST /2015-03-31/functions/NAME/invocations). */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "faas/faas_impl.h"

#define INVOKE_PREFIX "/2015-03-31/functions/"
#define INVOKE_SUFFIX "/invocations"
#define ACCOUNT "000000000000"

int faas_reply(struct MHD_Connection *c, unsigned status, const char *body, size_t len, const char *const *hdrs)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    for (size_t i = 0; hdrs && hdrs[i]; i += 2)
        MHD_add_response_header(r, hdrs[i], hdrs[i + 1]);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

char *faas_json_obj2(const char *k1, const char *v1, const char *k2, const char *v2)
{
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, k1, v1) && (!k2 || cJSON_AddStringToObject(o, k2, v2)))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Lambda's service error: status, x-amzn-ErrorType and {"Type":"User","message":...}. */
static int api_error(struct MHD_Connection *c, unsigned status, const char *type, const char *msg)
{
    char *body = faas_json_obj2("Type", "User", "message", msg);
    const char *hdrs[] = {"x-amzn-ErrorType", type, status == 405 ? "Allow" : NULL, "POST", NULL};
    int rc = faas_reply(c, status, body, body ? strlen(body) : 0, hdrs);
    free(body);
    return rc;
}

static int throttled(struct MHD_Connection *c)
{
    static const char body[] = "{\"Reason\":\"ReservedFunctionConcurrentInvocationLimitExceeded\","
                               "\"Type\":\"User\",\"message\":\"Rate Exceeded.\"}";
    const char *hdrs[] = {"x-amzn-ErrorType", "TooManyRequestsException", NULL};
    return faas_reply(c, 429, body, sizeof body - 1, hdrs);
}

static int invoke_sync(pl_faas *p, struct MHD_Connection *c, faas_fn *fn, const char *payload, size_t len)
{
    faas_inv inv;
    memset(&inv, 0, sizeof inv);
    faas_cond_init(&inv.cv);
    inv.payload = payload;
    inv.len = len;
    pthread_mutex_lock(&p->mu);
    faas_new_request_id(p, inv.request_id);
    int rc;
    if (faas_dispatch(p, fn, &inv) < 0) {
        pthread_mutex_unlock(&p->mu);
        rc = throttled(c);
    } else {
        faas_wait(p, fn, &inv);
        faas_record(p, fn, NULL, &inv);
        pthread_mutex_unlock(&p->mu);
        const char *hdrs[] = {"X-Amz-Executed-Version", "$LATEST", "x-amzn-RequestId", inv.request_id,
                              inv.function_error ? "X-Amz-Function-Error" : NULL, "Unhandled", NULL};
        rc = faas_reply(c, 200, inv.body, inv.body_len, hdrs);
    }
    free(inv.body);
    pthread_cond_destroy(&inv.cv);
    return rc;
}

typedef struct async_job {
    pl_faas *p;
    faas_fn *fn;
    faas_inv inv;
    char *payload;
} async_job;

/* Event invocations: like Lambda's internal queue, retry throttles until
 * a slot frees up (or the platform stops). */
static void *async_main(void *arg)
{
    async_job *j = arg;
    pl_faas *p = j->p;
    pthread_mutex_lock(&p->mu);
    int dispatched = 0;
    while (!p->stopping && !(dispatched = faas_dispatch(p, j->fn, &j->inv) == 0)) {
        struct timespec ts;
        faas_deadline_ts(faas_now() + 0.02, &ts);
        pthread_cond_timedwait(&p->monitor_cv, &p->mu, &ts);
    }
    if (dispatched) {
        faas_wait(p, j->fn, &j->inv);
        faas_record(p, j->fn, NULL, &j->inv);
    }
    p->async_running--;
    pthread_cond_broadcast(&p->monitor_cv);
    pthread_mutex_unlock(&p->mu);
    free(j->inv.body);
    pthread_cond_destroy(&j->inv.cv);
    free(j->payload);
    free(j);
    return NULL;
}

static int invoke_async(pl_faas *p, struct MHD_Connection *c, faas_fn *fn, const char *payload, size_t len)
{
    async_job *j = calloc(1, sizeof *j);
    char *copy = malloc(len + 1);
    if (!j || !copy) {
        free(j);
        free(copy);
        return api_error(c, 500, "ServiceException", "out of memory queueing the event");
    }
    memcpy(copy, payload, len);
    j->p = p;
    j->fn = fn;
    j->payload = copy;
    j->inv.payload = copy;
    j->inv.len = len;
    faas_cond_init(&j->inv.cv);
    pthread_mutex_lock(&p->mu);
    faas_new_request_id(p, j->inv.request_id);
    char id[40];
    memcpy(id, j->inv.request_id, sizeof id);
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int ok = !p->stopping && pthread_create(&t, &a, async_main, j) == 0;
    pthread_attr_destroy(&a);
    if (ok)
        p->async_running++;
    pthread_mutex_unlock(&p->mu);
    if (!ok) {
        pthread_cond_destroy(&j->inv.cv);
        free(copy);
        free(j);
        return api_error(c, 503, "ServiceException", "cannot queue the event (platform stopping)");
    }
    const char *hdrs[] = {"x-amzn-RequestId", id, NULL};
    return faas_reply(c, 202, "", 0, hdrs);
}

/* The function name from "NAME" or "arn:aws:lambda:REGION:ACCOUNT:function:NAME". */
static int parse_name(const char *url, char *name, size_t cap)
{
    size_t pl = strlen(INVOKE_PREFIX), ul = strlen(url), sl = strlen(INVOKE_SUFFIX);
    if (ul <= pl + sl || strncmp(url, INVOKE_PREFIX, pl) || strcmp(url + ul - sl, INVOKE_SUFFIX))
        return -1;
    const char *s = url + pl;
    size_t n = ul - pl - sl;
    const char *arn = strstr(s, ":function:");
    if (arn && arn < s + n) {
        n -= (size_t)(arn + 10 - s);
        s = arn + 10;
    }
    if (n == 0 || n >= cap || memchr(s, '/', n))
        return -1;
    memcpy(name, s, n);
    name[n] = '\0';
    return 0;
}

static int invoke_route(pl_faas *p, struct MHD_Connection *c, const char *url, const char *method, faas_req *r)
{
    char name[200], msg[400];
    if (!strcmp(url, "/"))
        return faas_sfn_route(p, c, method, r);
    if (parse_name(url, name, sizeof name) != 0) {
        snprintf(msg, sizeof msg, "Unknown operation %s %.300s (expected POST " INVOKE_PREFIX "NAME" INVOKE_SUFFIX ")",
                 method, url);
        return api_error(c, 404, "UnknownOperationException", msg);
    }
    if (strcmp(method, "POST")) {
        snprintf(msg, sizeof msg, "Method %s not allowed on %.300s; Invoke takes POST", method, url);
        return api_error(c, 405, "MethodNotAllowedException", msg);
    }
    faas_auth_error ae;
    if (faas_auth_check(p, c, method, url, r, "lambda", &ae))
        return api_error(c, ae.status, ae.type, ae.msg);
    const char *qual = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "Qualifier");
    pthread_mutex_lock(&p->mu);
    faas_fn *fn = faas_find_fn(p, name);
    pthread_mutex_unlock(&p->mu);
    if (!fn || (qual && strcmp(qual, "$LATEST"))) {
        snprintf(msg, sizeof msg, "Function not found: arn:aws:lambda:%s:" ACCOUNT ":function:%.64s%s%.64s", p->region,
                 name, qual ? ":" : "", qual ? qual : "");
        return api_error(c, 404, "ResourceNotFoundException", msg);
    }
    if (r->too_big) {
        snprintf(msg, sizeof msg, "Request must be smaller than %u bytes for the InvokeFunction operation",
                 FAAS_MAX_BODY);
        return api_error(c, 413, "RequestTooLargeException", msg);
    }
    const char *payload = r->len ? r->buf : "{}";
    size_t len = r->len ? r->len : 2;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(payload, len, &end, 0);
    int bad = !j || (size_t)(end - payload) != len;
    cJSON_Delete(j);
    if (bad) {
        snprintf(msg, sizeof msg, "Could not parse request body into json: error near byte %zu of %zu",
                 end ? (size_t)(end - payload) : (size_t)0, len);
        return api_error(c, 400, "InvalidRequestContentException", msg);
    }
    const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Invocation-Type");
    if (!type || !strcmp(type, "RequestResponse"))
        return invoke_sync(p, c, fn, payload, len);
    if (!strcmp(type, "Event"))
        return invoke_async(p, c, fn, payload, len);
    if (!strcmp(type, "DryRun"))
        return faas_reply(c, 204, "", 0, NULL);
    snprintf(msg, sizeof msg, "X-Amz-Invocation-Type '%.64s': expected RequestResponse, Event or DryRun", type);
    return api_error(c, 400, "InvalidParameterValueException", msg);
}

static int body_append(faas_req *r, const char *data, size_t n)
{
    if (r->too_big || r->len + n > FAAS_MAX_BODY) {
        r->too_big = 1;
        return 0;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *b = realloc(r->buf, cap);
        if (!b)
            return -1;
        r->buf = b;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    r->buf[r->len] = '\0';
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls,
                                  int runtime)
{
    (void)version;
    faas_req *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (body_append(r, upload, *upload_size) != 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (runtime)
        return (enum MHD_Result)faas_runtime_route(cls, c, url, method, r);
    return (enum MHD_Result)invoke_route(cls, c, url, method, r);
}

static enum MHD_Result on_invoke(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    return on_request(cls, c, url, method, version, upload, upload_size, con_cls, 0);
}

static enum MHD_Result on_runtime(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    return on_request(cls, c, url, method, version, upload, upload_size, con_cls, 1);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode code)
{
    (void)cls, (void)c, (void)code;
    faas_req *r = *con_cls;
    if (r)
        free(r->buf);
    free(r);
    *con_cls = NULL;
}

struct MHD_Daemon *faas_http_start(const char *host, int port, void *cls, int runtime, int *bound_port,
                                   pl_err *err)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        pl_err_set(err, PL_ERR_ARG, "faas: bind address '%s': expected an IPv4 address", host);
        return NULL;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL,
        runtime ? on_runtime : on_invoke, cls, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_END);
    if (!d) {
        pl_err_set(err, PL_ERR_IO, "faas: cannot listen on %s:%d (port in use?)", host, port);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info ? (int)info->port : port;
    return d;
}
