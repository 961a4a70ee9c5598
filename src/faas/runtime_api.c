/* runtime_api.c — the Lambda Runtime API served to one environment:
 *   GET  /2018-06-01/runtime/invocation/next
 *   POST /2018-06-01/runtime/invocation/{id}/response
 *   POST /2018-06-01/runtime/invocation/{id}/error
 *   POST /2018-06-01/runtime/init/error */
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faas/faas_impl.h"

#define RT_PREFIX "/2018-06-01/runtime/"

static int rt_error_allow(struct MHD_Connection *c, unsigned status, const char *type, const char *msg,
                          const char *allow)
{
    char *body = faas_json_obj2("errorMessage", msg, "errorType", type);
    const char *hdrs[] = {allow ? "Allow" : NULL, allow, NULL};
    int rc = faas_reply(c, status, body, body ? strlen(body) : 0, hdrs);
    free(body);
    return rc;
}

static int rt_error(struct MHD_Connection *c, unsigned status, const char *type, const char *msg)
{
    return rt_error_allow(c, status, type, msg, NULL);
}

static long long epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Hand the event to the runtime (locked); returns the response to queue. */
static struct MHD_Response *deliver(faas_env *env, faas_inv *inv)
{
    pl_faas *p = env->p;
    double now = faas_now();
    inv->delivered = 1;
    inv->t_delivered = now;
    inv->deadline = now + env->fn->timeout_s;
    inv->pid = env->pid;
    inv->init_ms = env->init_ms;
    env->state = ENV_BUSY;
    faas_env_reset_peak(env);
    pthread_cond_signal(&inv->cv); /* the invoker now waits for the real deadline */
    struct MHD_Response *r = MHD_create_response_from_buffer(inv->len, (void *)inv->payload, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return NULL;
    char deadline[32], arn[160], trace[128];
    snprintf(deadline, sizeof deadline, "%lld", epoch_ms() + (long long)(env->fn->timeout_s * 1000));
    snprintf(arn, sizeof arn, "arn:aws:lambda:%s:000000000000:function:%s", p->region, env->fn->name);
    unsigned long long s = p->seq * 0x9e3779b97f4a7c15ULL;
    snprintf(trace, sizeof trace, "Root=1-%08llx-%024llx;Parent=%016llx;Sampled=0",
             (unsigned long long)time(NULL) & 0xffffffffULL, s & 0xffffffffffffULL, s ^ 0x5bd1e995ULL);
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Lambda-Runtime-Aws-Request-Id", inv->request_id);
    MHD_add_response_header(r, "Lambda-Runtime-Deadline-Ms", deadline);
    MHD_add_response_header(r, "Lambda-Runtime-Invoked-Function-Arn", arn);
    MHD_add_response_header(r, "Lambda-Runtime-Trace-Id", trace);
    return r;
}

static int rt_next(faas_env *env, struct MHD_Connection *c)
{
    pl_faas *p = env->p;
    pthread_mutex_lock(&p->mu);
    if (!env->init_done) {
        env->init_done = 1;
        env->init_ms = (faas_now() - env->t_spawn) * 1e3;
    }
    while (env->state != ENV_STOPPING && !(env->inv && !env->inv->delivered && !env->inv->done))
        pthread_cond_wait(&env->cv, &p->mu);
    if (env->state == ENV_STOPPING) {
        pthread_mutex_unlock(&p->mu);
        return rt_error(c, 410, "Runtime.Stopping", "the execution environment is shutting down");
    }
    struct MHD_Response *r = deliver(env, env->inv);
    pthread_mutex_unlock(&p->mu);
    if (!r)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

/* The error document: the runtime's JSON object as sent, else one built
 * from its text and the Lambda-Runtime-Function-Error-Type header. */
static char *error_doc(struct MHD_Connection *c, const faas_req *r, size_t *len)
{
    cJSON *j = r->len ? cJSON_ParseWithLength(r->buf, r->len) : NULL;
    int object = cJSON_IsObject(j);
    cJSON_Delete(j);
    char *doc;
    if (object) {
        doc = malloc(r->len + 1);
        if (doc)
            memcpy(doc, r->buf, r->len + 1);
    } else {
        const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Lambda-Runtime-Function-Error-Type");
        doc = faas_json_obj2("errorMessage", r->len ? r->buf : "", "errorType", type ? type : "Runtime.Unknown");
    }
    *len = doc ? strlen(doc) : 0;
    return doc;
}

static int rt_result(faas_env *env, struct MHD_Connection *c, const char *id, faas_req *r, int is_error)
{
    pl_faas *p = env->p;
    char msg[200];
    pthread_mutex_lock(&p->mu);
    faas_inv *inv = env->inv;
    if (!inv || !inv->delivered || inv->done || strcmp(inv->request_id, id)) {
        pthread_mutex_unlock(&p->mu);
        snprintf(msg, sizeof msg, "Invalid request ID: '%.64s' is not the invocation in progress", id);
        return rt_error(c, 400, "InvalidRequestID", msg);
    }
    inv->max_mem_mb = faas_env_max_mem_mb(env);
    if (r->too_big) {
        snprintf(msg, sizeof msg, "response larger than %u bytes", FAAS_MAX_BODY);
        faas_fail(inv, "Function.ResponseSizeTooLarge", "Response payload size exceeded maximum allowed payload size (%u bytes).",
                  FAAS_MAX_BODY);
    } else if (is_error) {
        inv->body = error_doc(c, r, &inv->body_len);
        inv->function_error = 1;
        snprintf(inv->outcome, sizeof inv->outcome, "error");
    } else {
        inv->body = malloc(r->len + 1);
        if (inv->body)
            memcpy(inv->body, r->len ? r->buf : "", r->len + 1);
        inv->body_len = inv->body ? r->len : 0;
        snprintf(inv->outcome, sizeof inv->outcome, "success");
    }
    inv->done = 1;
    inv->t_done = faas_now();
    pthread_cond_signal(&inv->cv);
    env->inv = NULL;
    env->state = ENV_IDLE;
    env->last_used = inv->t_done;
    pthread_mutex_unlock(&p->mu);
    if (r->too_big)
        return rt_error(c, 413, "RequestEntityTooLarge", msg);
    return faas_reply(c, 202, "{\"status\":\"OK\"}", 15, NULL);
}

/* The runtime could not initialise: the pending invocation fails with its
 * error and the environment is stopped (the next call starts a new one). */
static int rt_init_error(faas_env *env, struct MHD_Connection *c, faas_req *r)
{
    pl_faas *p = env->p;
    size_t len;
    char *doc = error_doc(c, r, &len);
    pthread_mutex_lock(&p->mu);
    free(env->init_error);
    env->init_error = doc;
    faas_inv *inv = env->inv;
    if (inv && !inv->done && doc) {
        free(inv->body);
        inv->body = strdup(doc);
        inv->body_len = inv->body ? len : 0;
        inv->function_error = 1;
        snprintf(inv->outcome, sizeof inv->outcome, "Runtime.InitError");
        inv->init_ms = (faas_now() - env->t_spawn) * 1e3;
        inv->pid = env->pid;
        inv->done = 1;
        inv->need_reap = 1;
        inv->t_done = faas_now();
        pthread_cond_signal(&inv->cv);
    }
    env->killed_by_us = 1;
    env->state = ENV_STOPPING;
    pthread_cond_broadcast(&env->cv);
    pthread_cond_broadcast(&p->monitor_cv);
    pthread_mutex_unlock(&p->mu);
    return faas_reply(c, 202, "{\"status\":\"OK\"}", 15, NULL);
}

int faas_runtime_route(faas_env *env, struct MHD_Connection *c, const char *url, const char *method, faas_req *r)
{
    char msg[400], id[64];
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    const char *rest = strncmp(url, RT_PREFIX, strlen(RT_PREFIX)) ? NULL : url + strlen(RT_PREFIX);
    if (rest && !strcmp(rest, "invocation/next")) {
        if (get)
            return rt_next(env, c);
        snprintf(msg, sizeof msg, "method %s not allowed on %s; use GET", method, url);
        return rt_error_allow(c, 405, "MethodNotAllowed", msg, "GET");
    }
    if (rest && !strcmp(rest, "init/error") && post)
        return rt_init_error(env, c, r);
    int n = 0;
    if (rest && sscanf(rest, "invocation/%63[^/]/%n", id, &n) == 1 && n > 0) {
        int is_resp = !strcmp(rest + n, "response"), is_err = !strcmp(rest + n, "error");
        if ((is_resp || is_err) && post)
            return rt_result(env, c, id, r, is_err);
        if (is_resp || is_err) {
            snprintf(msg, sizeof msg, "method %s not allowed on %s; use POST", method, url);
            return rt_error_allow(c, 405, "MethodNotAllowed", msg, "POST");
        }
    }
    snprintf(msg, sizeof msg, "unknown Runtime API path %s %.300s", method, url);
    return rt_error(c, 404, "InvalidPath", msg);
}
