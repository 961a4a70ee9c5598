/* platform.c — the function platform: functions, dispatch, timeouts,
 * reports and the monitor thread (spawns, reaps, scale to zero). */
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "faas/faas_impl.h"

#define MONITOR_TICK_S 0.002

double faas_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void faas_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

void faas_deadline_ts(double t, struct timespec *ts)
{
    ts->tv_sec = (time_t)t;
    ts->tv_nsec = (long)((t - (double)ts->tv_sec) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

faas_fn *faas_find_fn(pl_faas *p, const char *name)
{
    for (faas_fn *f = p->fns; f; f = f->next)
        if (!strcmp(f->name, name))
            return f;
    return NULL;
}

void faas_new_request_id(pl_faas *p, char out[40])
{
    unsigned long long s = ++p->seq;
    unsigned long long t = (unsigned long long)time(NULL);
    unsigned pid = (unsigned)getpid();
    snprintf(out, 40, "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)(t & 0xffffffffu), pid & 0xffffu,
             (unsigned)(s >> 12) & 0xfffu, (unsigned)s & 0xfffu, (s * 0x9e3779b97f4a7c15ULL) & 0xffffffffffffULL);
}

void faas_fail(faas_inv *inv, const char *type, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(inv->body);
    inv->body = faas_json_obj2("errorMessage", msg, "errorType", type);
    inv->body_len = inv->body ? strlen(inv->body) : 0;
    inv->function_error = 1;
    snprintf(inv->outcome, sizeof inv->outcome, "%s", type);
    inv->done = 1;
    inv->t_done = faas_now();
    pthread_cond_signal(&inv->cv);
}

static void log_report(FILE *f, const pl_faas_report *r)
{
    fprintf(f,
            "{\"type\":\"REPORT\",\"request_id\":\"%s\",\"function\":\"%s\",\"cold_start\":%s,"
            "\"init_duration_ms\":%.3f,\"duration_ms\":%.3f,\"billed_duration_ms\":%ld,"
            "\"memory_size_mb\":%d,\"max_memory_used_mb\":%.1f,\"outcome\":\"%s\",\"pid\":%d}\n",
            r->request_id, r->function, r->cold ? "true" : "false", r->init_ms, r->duration_ms, r->billed_ms,
            r->memory_mb, r->max_memory_used_mb, r->outcome, (int)r->pid);
    fflush(f);
}

void faas_record(pl_faas *p, faas_fn *fn, faas_env *env, faas_inv *inv)
{
    (void)env;
    pl_faas_report r;
    memset(&r, 0, sizeof r);
    snprintf(r.request_id, sizeof r.request_id, "%s", inv->request_id);
    snprintf(r.function, sizeof r.function, "%s", fn->name);
    snprintf(r.outcome, sizeof r.outcome, "%s", inv->outcome);
    r.cold = inv->cold;
    r.init_ms = inv->cold ? inv->init_ms : 0;
    r.duration_ms = inv->delivered ? (inv->t_done - inv->t_delivered) * 1e3 : 0;
    r.billed_ms = (long)ceil(r.duration_ms);
    if (r.billed_ms < 1)
        r.billed_ms = 1;
    r.memory_mb = fn->memory_mb;
    r.max_memory_used_mb = inv->max_mem_mb;
    r.pid = inv->pid;
    if (p->nreports == p->capreports) {
        size_t cap = p->capreports ? 2 * p->capreports : 64;
        pl_faas_report *n = realloc(p->reports, cap * sizeof *n);
        if (!n)
            return; /* the log line below still records it */
        p->reports = n;
        p->capreports = cap;
    }
    p->reports[p->nreports++] = r;
    if (p->log)
        log_report(p->log, &r);
}

int faas_dispatch(pl_faas *p, faas_fn *fn, faas_inv *inv)
{
    int live = 0;
    for (faas_env *e = p->envs; e; e = e->next) {
        if (e->fn != fn || e->state == ENV_STOPPING)
            continue;
        live++;
        if (e->state == ENV_IDLE) {
            e->state = ENV_BUSY;
            e->inv = inv;
            inv->env = e;
            pthread_cond_signal(&e->cv);
            return 0;
        }
    }
    if (live >= fn->concurrency || p->stopping)
        return -1;
    faas_env *e = calloc(1, sizeof *e);
    if (!e) {
        faas_fail(inv, "Runtime.StartError", "out of memory starting an environment of %s", fn->name);
        return 0;
    }
    e->p = p;
    e->fn = fn;
    e->id = ++fn->next_env_id;
    e->state = ENV_SPAWNING;
    faas_cond_init(&e->cv);
    e->inv = inv;
    inv->env = e;
    inv->cold = 1;
    e->next = p->envs;
    p->envs = e;
    pthread_cond_broadcast(&p->monitor_cv);
    return 0;
}

int faas_invoke_local(pl_faas *p, const char *name, const char *payload, size_t len, char **body,
                      int *function_error)
{
    *body = NULL;
    *function_error = 0;
    faas_inv inv;
    memset(&inv, 0, sizeof inv);
    faas_cond_init(&inv.cv);
    inv.payload = payload;
    inv.len = len;
    int rc = FAAS_LOCAL_OK;
    long backoff_ms = 10;
    pthread_mutex_lock(&p->mu);
    faas_fn *fn = faas_find_fn(p, name);
    faas_new_request_id(p, inv.request_id);
    /* Throttled: retry like pl_faas_invoke (10 ms doubling to 1 s, 8 times). */
    for (int attempt = 0; fn && !p->stopping && faas_dispatch(p, fn, &inv) < 0; attempt++) {
        if (attempt == 8) {
            rc = FAAS_LOCAL_THROTTLED;
            break;
        }
        struct timespec ts;
        faas_deadline_ts(faas_now() + (double)backoff_ms * 1e-3, &ts);
        pthread_cond_timedwait(&inv.cv, &p->mu, &ts);
        backoff_ms = backoff_ms * 2 > 1000 ? 1000 : backoff_ms * 2;
    }
    if (!fn)
        rc = FAAS_LOCAL_NOTFOUND;
    else if (rc == FAAS_LOCAL_OK && p->stopping && !inv.env)
        rc = FAAS_LOCAL_STOPPING;
    else if (rc == FAAS_LOCAL_OK) {
        faas_wait(p, fn, &inv);
        faas_record(p, fn, NULL, &inv);
    }
    pthread_mutex_unlock(&p->mu);
    if (rc == FAAS_LOCAL_OK) {
        *body = inv.body ? inv.body : strdup("");
        inv.body = NULL;
        *function_error = inv.function_error;
        if (!*body)
            rc = FAAS_LOCAL_NOMEM;
    }
    free(inv.body);
    pthread_cond_destroy(&inv.cv);
    return rc;
}

static void timeout_kill(faas_fn *fn, faas_inv *inv)
{
    faas_env *e = inv->env;
    inv->max_mem_mb = faas_env_max_mem_mb(e);
    if (inv->delivered)
        faas_fail(inv, "Sandbox.Timedout", "Task timed out after %.2f seconds", fn->timeout_s);
    else
        faas_fail(inv, "Sandbox.Timedout", "Init timed out after %.2f seconds", FAAS_INIT_LIMIT_S);
    snprintf(inv->outcome, sizeof inv->outcome, "Sandbox.Timedout");
    inv->need_reap = 1;
    e->killed_by_us = 1;
    e->state = ENV_STOPPING;
    pthread_cond_broadcast(&e->cv);
    if (e->pid > 0)
        kill(-e->pid, SIGKILL);
    pthread_cond_broadcast(&e->p->monitor_cv);
}

void faas_wait(pl_faas *p, faas_fn *fn, faas_inv *inv)
{
    double t0 = faas_now();
    while (!inv->done || (inv->need_reap && !inv->env_gone)) {
        double dl = inv->delivered ? inv->deadline : t0 + FAAS_INIT_LIMIT_S + fn->timeout_s;
        if (inv->done) {
            pthread_cond_wait(&inv->cv, &p->mu);
            continue;
        }
        struct timespec ts;
        faas_deadline_ts(dl, &ts);
        int rc = pthread_cond_timedwait(&inv->cv, &p->mu, &ts);
        if (rc == ETIMEDOUT && !inv->done && faas_now() >= dl)
            timeout_kill(fn, inv);
    }
}

static void exit_reason(char *buf, size_t n, int status)
{
    if (WIFSIGNALED(status))
        snprintf(buf, n, "signal: %s", WTERMSIG(status) == SIGKILL ? "killed" : strsignal(WTERMSIG(status)));
    else
        snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
}

/* The environment's process is gone (reaped, or never started): fail its
 * invocation if one was in flight and wake the invoker. Locked. */
static void env_finish_inv(faas_env *e, int status, int oom, double mem)
{
    faas_inv *inv = e->inv;
    if (!inv)
        return;
    if (!inv->done) {
        char why[80];
        exit_reason(why, sizeof why, status);
        inv->max_mem_mb = mem;
        if (oom)
            faas_fail(inv, "Runtime.OutOfMemory", "RequestId: %s Error: Runtime exited with error: %s (memory limit %d MB exceeded)",
                      inv->request_id, why, e->fn->memory_mb);
        else if (e->pid <= 0)
            faas_fail(inv, "Runtime.StartError", "RequestId: %s Error: could not start the runtime: %s",
                      inv->request_id, e->init_error ? e->init_error : "platform stopping");
        else
            faas_fail(inv, "Runtime.ExitError", "RequestId: %s Error: Runtime exited with error: %s",
                      inv->request_id, why);
    }
    inv->env_gone = 1;
    pthread_cond_signal(&inv->cv);
    e->inv = NULL;
}

/* Tear one environment down; called with p->mu held, e already unlinked. */
static void env_teardown(pl_faas *p, faas_env *e, int status)
{
    e->state = ENV_STOPPING;
    pthread_cond_broadcast(&e->cv);
    pid_t pid = e->pid;
    int exited = e->exited;
    pthread_mutex_unlock(&p->mu);
    if (pid > 0) {
        kill(-pid, SIGKILL);
        if (!exited)
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
    }
    int oom = pid > 0 && !e->killed_by_us && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
              faas_env_oom_killed(e);
    double mem = faas_env_max_mem_mb(e);
    pthread_mutex_lock(&p->mu);
    e->exited = 1;
    env_finish_inv(e, status, oom, mem);
    pthread_mutex_unlock(&p->mu);
    faas_env_free(e);
    pthread_mutex_lock(&p->mu);
}

static void spawn_one(pl_faas *p, faas_env *e)
{
    e->state = ENV_STARTING;
    pthread_mutex_unlock(&p->mu);
    pl_err err = {0};
    int rc = faas_env_spawn(p, e, &err);
    pthread_mutex_lock(&p->mu);
    if (rc != PL_OK) {
        free(e->init_error);
        e->init_error = strdup(err.msg);
        e->state = ENV_STOPPING;
    } else if (e->state == ENV_STOPPING) {
        kill(-e->pid, SIGKILL);
    }
}

/* One pass: start pending environments, reap exits, stop idle ones. */
static void monitor_pass(pl_faas *p, int all)
{
    double now = faas_now();
    for (faas_env **pp = &p->envs; *pp;) {
        faas_env *e = *pp;
        int status = 0;
        if (e->state == ENV_SPAWNING && !all)
            spawn_one(p, e);
        if (e->pid > 0 && !e->exited && waitpid(e->pid, &status, WNOHANG) == e->pid)
            e->exited = 1;
        int idle = e->state == ENV_IDLE && now - e->last_used >= e->fn->idle_timeout_s;
        if (!all && !e->exited && !idle && e->state != ENV_STOPPING) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        env_teardown(p, e, status);
        pp = &p->envs; /* the list may have changed while unlocked */
    }
}

static void *monitor_main(void *arg)
{
    pl_faas *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        monitor_pass(p, 0);
        struct timespec ts;
        faas_deadline_ts(faas_now() + MONITOR_TICK_S, &ts);
        pthread_cond_timedwait(&p->monitor_cv, &p->mu, &ts);
    }
    monitor_pass(p, 1);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void fn_free(faas_fn *f)
{
    if (!f)
        return;
    free(f->name);
    free(f->command);
    free(f->handler);
    free(f->task_root);
    free(f);
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static int check_fn(const pl_faas_function *f, pl_err *err)
{
    if (!f->name || !valid_name(f->name))
        return pl_err_set(err, PL_ERR_ARG, "faas: function name '%s': expected 1-64 of [A-Za-z0-9_-]",
                          f->name ? f->name : "(null)");
    if (!f->command || !*f->command)
        return pl_err_set(err, PL_ERR_ARG, "faas: function %s: empty command", f->name);
    if (f->memory_mb && (f->memory_mb < 16 || f->memory_mb > 10240))
        return pl_err_set(err, PL_ERR_ARG, "faas: function %s: memory %d MB: expected 16..10240", f->name,
                          f->memory_mb);
    if (f->timeout_s < 0 || f->timeout_s > 900 || f->idle_timeout_s < 0 || f->concurrency < 0)
        return pl_err_set(err, PL_ERR_ARG,
                          "faas: function %s: timeout %.3g s (0..900), idle timeout %.3g s (>= 0), "
                          "concurrency %d (>= 0) out of range",
                          f->name, f->timeout_s, f->idle_timeout_s, f->concurrency);
    return PL_OK;
}

int pl_faas_add_function(pl_faas *p, const pl_faas_function *f, pl_err *err)
{
    if (check_fn(f, err) != PL_OK)
        return err ? err->status : PL_ERR_ARG;
    faas_fn *n = calloc(1, sizeof *n);
    char cwd[512];
    if (!f->task_root && !getcwd(cwd, sizeof cwd))
        snprintf(cwd, sizeof cwd, "/");
    if (n) {
        n->name = strdup(f->name);
        n->command = strdup(f->command);
        n->handler = strdup(f->handler ? f->handler : "handler");
        n->task_root = strdup(f->task_root ? f->task_root : cwd);
    }
    if (!n || !n->name || !n->command || !n->handler || !n->task_root) {
        fn_free(n);
        return pl_err_set(err, PL_ERR_NOMEM, "faas: adding function %s: out of memory", f->name);
    }
    n->memory_mb = f->memory_mb ? f->memory_mb : 128;
    n->timeout_s = f->timeout_s > 0 ? f->timeout_s : 3;
    n->concurrency = f->concurrency ? f->concurrency : 10;
    n->idle_timeout_s = f->idle_timeout_s > 0 ? f->idle_timeout_s : 300;
    pthread_mutex_lock(&p->mu);
    int dup = faas_find_fn(p, f->name) != NULL;
    if (!dup) {
        n->next = p->fns;
        p->fns = n;
    }
    pthread_mutex_unlock(&p->mu);
    if (dup) {
        fn_free(n);
        return pl_err_set(err, PL_ERR_ARG, "faas: function %s defined twice", f->name);
    }
    return PL_OK;
}

int pl_faas_create(const pl_faas_config *cfg, pl_faas **out, pl_err *err)
{
    *out = NULL;
    pl_faas *p = calloc(1, sizeof *p);
    if (!p)
        return pl_err_set(err, PL_ERR_NOMEM, "faas: out of memory");
    pthread_mutex_init(&p->mu, NULL);
    faas_cond_init(&p->monitor_cv);
    p->region = strdup(cfg->region ? cfg->region : "us-east-1");
    if (!p->region) {
        pl_faas_destroy(p);
        return pl_err_set(err, PL_ERR_NOMEM, "faas: out of memory");
    }
    if (cfg->log_path && !(p->log = fopen(cfg->log_path, "ae"))) {
        pl_err_set(err, PL_ERR_IO, "faas: opening log %s: %s", cfg->log_path, strerror(errno));
        pl_faas_destroy(p);
        return PL_ERR_IO;
    }
    int rc = faas_sfn_create(p) == PL_OK ? faas_cgroup_setup(p, cfg->memory_mode, err)
                                         : pl_err_set(err, PL_ERR_NOMEM, "faas: out of memory");
    if (rc == PL_OK && pthread_create(&p->monitor, NULL, monitor_main, p) != 0)
        rc = pl_err_set(err, PL_ERR_IO, "faas: cannot start the monitor thread");
    p->monitor_started = rc == PL_OK;
    if (rc == PL_OK) {
        p->invoke_daemon = faas_http_start(cfg->host ? cfg->host : "127.0.0.1", cfg->port, p, 0, &p->port, err);
        if (!p->invoke_daemon)
            rc = err ? err->status : PL_ERR_IO;
    }
    if (rc != PL_OK) {
        pl_faas_destroy(p);
        return rc;
    }
    *out = p;
    return PL_OK;
}

void pl_faas_destroy(pl_faas *p)
{
    if (!p)
        return;
    /* Executions start no new tasks; stopping the monitor fails the tasks in
     * flight; then no request is being served and the execution threads end. */
    faas_sfn_abort_all(p);
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->monitor_cv);
    pthread_mutex_unlock(&p->mu);
    if (p->monitor_started)
        pthread_join(p->monitor, NULL);
    if (p->invoke_daemon)
        MHD_stop_daemon(p->invoke_daemon);
    faas_sfn_destroy(p);
    pthread_mutex_lock(&p->mu);
    while (p->async_running)
        pthread_cond_wait(&p->monitor_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    faas_cgroup_teardown(p);
    while (p->fns) {
        faas_fn *f = p->fns;
        p->fns = f->next;
        fn_free(f);
    }
    if (p->log)
        fclose(p->log);
    free(p->reports);
    free(p->region);
    free(p->sigv4_ak);
    free(p->sigv4_sk);
    pthread_cond_destroy(&p->monitor_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int pl_faas_require_sigv4(pl_faas *p, const char *access_key, const char *secret_key, pl_err *err)
{
    if (!access_key != !secret_key || (access_key && (!*access_key || !*secret_key)))
        return pl_err_set(err, PL_ERR_ARG, "faas: SigV4 verification needs both an access key id and a secret key");
    char *ak = access_key ? strdup(access_key) : NULL, *sk = secret_key ? strdup(secret_key) : NULL;
    if (access_key && (!ak || !sk)) {
        free(ak);
        free(sk);
        return pl_err_set(err, PL_ERR_NOMEM, "faas: out of memory");
    }
    pthread_mutex_lock(&p->mu);
    free(p->sigv4_ak);
    free(p->sigv4_sk);
    p->sigv4_ak = ak;
    p->sigv4_sk = sk;
    p->sigv4 = 1;
    pthread_mutex_unlock(&p->mu);
    return PL_OK;
}

int pl_faas_port(const pl_faas *p)
{
    return p->port;
}

const char *pl_faas_memory_mode_name(const pl_faas *p)
{
    return p->use_cgroup ? "cgroup-v1" : "rlimit-as";
}

int pl_faas_env_pids(pl_faas *p, const char *function, pid_t *pids, int cap)
{
    int n = 0;
    pthread_mutex_lock(&p->mu);
    for (faas_env *e = p->envs; e; e = e->next) {
        if (strcmp(e->fn->name, function) || e->pid <= 0 || e->exited)
            continue;
        if (n < cap)
            pids[n] = e->pid;
        n++;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t pl_faas_reports(pl_faas *p, size_t first, pl_faas_report *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = first; i < p->nreports && n < cap; i++)
        out[n++] = p->reports[i];
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t pl_faas_report_count(pl_faas *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->nreports;
    pthread_mutex_unlock(&p->mu);
    return n;
}
