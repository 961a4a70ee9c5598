/* asl_run.c — the interpreter: walks a parsed graph on a JSON document.
 *
 * Data flow per state (spec "Input and Output Processing"): raw input ->
 * InputPath -> Parameters/ItemSelector -> (Task/Map/Parallel work) ->
 * ResultSelector -> ResultPath (merged into the raw input) -> OutputPath.
 * Map iterations and Parallel branches run on a small thread pool; their
 * results are stored by index, so output order is item order whatever the
 * completion order. Errors are (name, cause) strings; Retry and Catch match
 * them by name. Path failures are States.Runtime, which neither Retry nor
 * Catch can match except by name (as in AWS, States.ALL does not). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faas/asl_internal.h"

static const char *const type_names[] = {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"};

typedef struct call {
    pl_asl_invoke_fn fn;
    void *ctx;
    const char *resource;
    char *input, *out, *error, *cause;
    int rc, done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
} call;

typedef struct run {
    pl_asl_options opt;
    double scale;
    asl_history *hist;
    pthread_mutex_t mu; /* guards orphans */
    call **orphans;     /* timed-out calls still running; joined at the end */
    int norphans;
} run;

/* Result of a state or graph: out (owned) on success, else error/cause. */
typedef struct outcome {
    cJSON *out;
    char *error, *cause;
} outcome;

static void fail_with(outcome *o, const char *error, const char *cause)
{
    free(o->error);
    free(o->cause);
    o->error = strdup(error ? error : "States.Runtime");
    o->cause = cause ? strdup(cause) : NULL;
}

static void runtime_error(outcome *o, const asl_state *s, const char *what, const char *path)
{
    char cause[512];
    snprintf(cause, sizeof cause, "state '%s': %s%s%s", s->name, what, path ? " " : "", path ? path : "");
    fail_with(o, "States.Runtime", cause);
}

static void sleep_s(double s)
{
    if (!(s > 0))
        return;
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static void event(run *r, const asl_state *s, const char *suffix, const char *key, cJSON *value)
{
    char type[48];
    snprintf(type, sizeof type, "%s%s", type_names[s->type], suffix);
    cJSON *d = cJSON_CreateObject();
    if (d) {
        cJSON_AddStringToObject(d, "name", s->name);
        if (key && value)
            cJSON_AddItemToObject(d, key, value);
        else
            cJSON_Delete(value);
    } else {
        cJSON_Delete(value);
    }
    asl_history_add(r->hist, type, d);
}

/* ---- the context object ($$) ---- */

static void ctx_enter(cJSON *ctx, const char *state)
{
    char now[32];
    asl_now_iso(now, sizeof now);
    cJSON *st = cJSON_CreateObject();
    if (!st)
        return;
    cJSON_AddStringToObject(st, "Name", state);
    cJSON_AddStringToObject(st, "EnteredTime", now);
    if (cJSON_GetObjectItemCaseSensitive(ctx, "State"))
        cJSON_ReplaceItemInObjectCaseSensitive(ctx, "State", st);
    else
        cJSON_AddItemToObject(ctx, "State", st);
}

/* A copy of ctx with Map.Item = {Index, Value}. */
static cJSON *ctx_item(const cJSON *ctx, int index, const cJSON *value)
{
    cJSON *c = cJSON_Duplicate(ctx, 1);
    cJSON *map = c ? cJSON_CreateObject() : NULL;
    cJSON *item = map ? cJSON_AddObjectToObject(map, "Item") : NULL;
    if (!item) {
        cJSON_Delete(map);
        cJSON_Delete(c);
        return NULL;
    }
    cJSON_AddNumberToObject(item, "Index", index);
    cJSON_AddItemToObject(item, "Value", cJSON_Duplicate(value, 1));
    cJSON_DeleteItemFromObjectCaseSensitive(c, "Map");
    cJSON_AddItemToObject(c, "Map", map);
    return c;
}

/* ---- input / output processing ---- */

/* InputPath applied to raw (borrowed). NULL with o set on failure. */
static cJSON *effective_input(const asl_state *s, const cJSON *raw, const cJSON *ctx, outcome *o)
{
    if (s->input_path_null)
        return cJSON_CreateObject();
    if (!s->has_input_path)
        return cJSON_Duplicate(raw, 1);
    cJSON *v = asl_path_get(&s->input_path, raw, ctx);
    if (!v)
        runtime_error(o, s, "InputPath matched nothing in the input", NULL);
    return v;
}

/* Parameters template over eff (taken). */
static cJSON *apply_parameters(const asl_state *s, cJSON *eff, const cJSON *ctx, outcome *o)
{
    /* A Map's Parameters are its ItemSelector, applied per item. */
    if (!s->parameters || !eff || s->type == ASL_MAP)
        return eff;
    const char *bad = NULL;
    cJSON *v = asl_template_apply(s->parameters, eff, ctx, &bad);
    cJSON_Delete(eff);
    if (!v)
        runtime_error(o, s, "Parameters path matched nothing:", bad);
    return v;
}

/* ResultSelector on result (taken), ResultPath into raw (taken), then
 * OutputPath. Returns the state output or NULL with o set. */
static cJSON *finish_output(const asl_state *s, cJSON *raw, cJSON *result, const cJSON *ctx, outcome *o)
{
    if (s->result_selector && result) {
        const char *bad = NULL;
        cJSON *v = asl_template_apply(s->result_selector, result, ctx, &bad);
        cJSON_Delete(result);
        if (!(result = v))
            runtime_error(o, s, "ResultSelector path matched nothing:", bad);
    }
    if (!result) {
        cJSON_Delete(raw);
        return NULL;
    }
    if (s->result_path_null) {
        cJSON_Delete(result);
    } else if (asl_path_set(s->has_result_path ? &s->result_path : &(asl_path){0}, &raw, result)) {
        runtime_error(o, s, "ResultPath does not fit the input", NULL);
        cJSON_Delete(raw);
        return NULL;
    }
    if (s->output_path_null) {
        cJSON_Delete(raw);
        return cJSON_CreateObject();
    }
    if (!s->has_output_path)
        return raw;
    cJSON *out = asl_path_get(&s->output_path, raw, ctx);
    cJSON_Delete(raw);
    if (!out)
        runtime_error(o, s, "OutputPath matched nothing", NULL);
    return out;
}

/* ---- errors: Retry / Catch ---- */

static int error_matches(const cJSON *names, const char *error)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, names) {
        const char *n = e->valuestring;
        if (!strcmp(n, error))
            return 1;
        if (!strcmp(n, "States.ALL") && strcmp(error, "States.Runtime"))
            return 1;
        if (!strcmp(n, "States.TaskFailed") && strcmp(error, "States.Timeout") && strcmp(error, "States.Runtime"))
            return 1;
    }
    return 0;
}

/* The delay before retry number attempt+1 of retrier rt, or -1 if none. */
static double retry_delay(const asl_state *s, int *attempts, const char *error)
{
    for (int k = 0; k < s->nretry; k++) {
        const asl_retrier *rt = &s->retry[k];
        if (!error_matches(rt->errors, error))
            continue;
        if (attempts[k] >= rt->max_attempts)
            return -1;
        double d = rt->interval * pow(rt->backoff, attempts[k]++);
        return rt->max_delay > 0 && d > rt->max_delay ? rt->max_delay : d;
    }
    return -1;
}

/* Catch: on a match, o->out = raw with {"Error","Cause"} at the catcher's
 * ResultPath and *next = its Next; returns 1. raw is borrowed. */
static int try_catch(const asl_state *s, const cJSON *raw, outcome *o, const char **next)
{
    for (int k = 0; k < s->ncatch; k++) {
        const asl_catcher *c = &s->catch_[k];
        if (!error_matches(c->errors, o->error))
            continue;
        cJSON *info = cJSON_CreateObject();
        cJSON *data = cJSON_Duplicate(raw, 1);
        if (!info || !data || !cJSON_AddStringToObject(info, "Error", o->error) ||
            !cJSON_AddStringToObject(info, "Cause", o->cause ? o->cause : "")) {
            cJSON_Delete(info);
            cJSON_Delete(data);
            return 0;
        }
        if (c->result_path_null)
            cJSON_Delete(info);
        else if (asl_path_set(c->has_result_path ? &c->result_path : &(asl_path){0}, &data, info)) {
            cJSON_Delete(data);
            return 0;
        }
        free(o->error);
        free(o->cause);
        o->error = o->cause = NULL;
        o->out = data;
        *next = c->next;
        return 1;
    }
    return 0;
}

/* ---- Task ---- */

static void *call_main(void *arg)
{
    call *c = arg;
    int rc = c->fn(c->ctx, c->resource, c->input, &c->out, &c->error, &c->cause);
    pthread_mutex_lock(&c->mu);
    c->rc = rc;
    c->done = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void call_free(call *c)
{
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->input);
    free(c->out);
    free(c->error);
    free(c->cause);
    free(c);
}

/* Wait for c until `timeout` seconds; 1 if it finished (and was joined). */
static int call_wait(run *r, call *c, double timeout)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    double t = dl.tv_sec + dl.tv_nsec * 1e-9 + timeout;
    dl.tv_sec = (time_t)t;
    dl.tv_nsec = (long)((t - floor(t)) * 1e9);
    pthread_mutex_lock(&c->mu);
    while (!c->done && pthread_cond_timedwait(&c->cv, &c->mu, &dl) != ETIMEDOUT)
        ;
    int done = c->done;
    pthread_mutex_unlock(&c->mu);
    if (done) {
        pthread_join(c->th, NULL);
        return 1;
    }
    pthread_mutex_lock(&r->mu);
    call **o = realloc(r->orphans, (size_t)(r->norphans + 1) * sizeof *o);
    if (o) {
        r->orphans = o;
        o[r->norphans++] = c;
    }
    pthread_mutex_unlock(&r->mu);
    if (!o) { /* cannot keep it for later: wait for it now */
        pthread_join(c->th, NULL);
        call_free(c);
    }
    return 0;
}

/* Invoke s->resource on input (taken); fills *c's results. Returns 1 when
 * the call finished, 0 on timeout (c is then owned by the orphan list). */
static int invoke(run *r, const asl_state *s, call *c)
{
    if (!(s->timeout > 0)) {
        c->rc = r->opt.invoke(r->opt.ctx, s->resource, c->input, &c->out, &c->error, &c->cause);
        return 1;
    }
    if (pthread_create(&c->th, NULL, call_main, c)) {
        c->rc = r->opt.invoke(r->opt.ctx, s->resource, c->input, &c->out, &c->error, &c->cause);
        return 1;
    }
    return call_wait(r, c, s->timeout * r->scale);
}

static cJSON *task_result(run *r, const asl_state *s, call *c, outcome *o)
{
    if (c->rc) {
        fail_with(o, c->error ? c->error : "States.TaskFailed", c->cause);
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "error", o->error ? o->error : "");
        cJSON_AddStringToObject(d, "cause", o->cause ? o->cause : "");
        event(r, s, "Failed", "failure", d);
        return NULL;
    }
    cJSON *v = c->out ? cJSON_Parse(c->out) : cJSON_CreateNull();
    if (!v) {
        fail_with(o, "States.TaskFailed", "the function returned invalid JSON");
        event(r, s, "Failed", "failure", NULL);
        return NULL;
    }
    event(r, s, "Succeeded", "output", cJSON_Duplicate(v, 1));
    return v;
}

/* One attempt of a Task on eff (borrowed). */
static cJSON *task_action(run *r, const asl_state *s, const cJSON *eff, const cJSON *ctx, outcome *o)
{
    (void)ctx;
    call *c = calloc(1, sizeof *c);
    if (!c || !(c->input = cJSON_PrintUnformatted(eff))) {
        free(c);
        fail_with(o, "States.Runtime", "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->fn = r->opt.invoke;
    c->ctx = r->opt.ctx;
    c->resource = s->resource;
    event(r, s, "Scheduled", "resource", cJSON_CreateString(s->resource));
    if (!invoke(r, s, c)) {
        fail_with(o, "States.Timeout", "the task exceeded TimeoutSeconds");
        event(r, s, "TimedOut", NULL, NULL);
        return NULL;
    }
    cJSON *v = task_result(r, s, c, o);
    call_free(c);
    return v;
}

/* ---- Map and Parallel: a pool of threads taking indices in order ---- */

static void run_graph(run *r, const asl_graph *g, cJSON *input, cJSON *ctx, outcome *o);

typedef struct pool {
    run *r;
    const asl_state *s;
    const cJSON *eff;  /* the state's effective input */
    const cJSON *ctx;
    cJSON **items;     /* Map: the items; Parallel: NULL */
    outcome *res;      /* [n] */
    int n, next, stop;
    pthread_mutex_t mu;
} pool;

/* Iteration / branch i: input, context, run, record. */
static void pool_job(pool *p, int i)
{
    const asl_state *s = p->s;
    cJSON *ctx = p->items ? ctx_item(p->ctx, i, p->items[i]) : cJSON_Duplicate(p->ctx, 1);
    cJSON *in = NULL;
    const char *bad = NULL;
    if (ctx && p->items)
        in = s->parameters ? asl_template_apply(s->parameters, p->eff, ctx, &bad) : cJSON_Duplicate(p->items[i], 1);
    else if (ctx)
        in = cJSON_Duplicate(p->eff, 1);
    const char *kind = p->items ? "MapIteration" : "ParallelBranch";
    char type[40];
    snprintf(type, sizeof type, "%sStarted", kind);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "name", s->name);
    cJSON_AddNumberToObject(d, "index", i);
    asl_history_add(p->r->hist, type, cJSON_Duplicate(d, 1));
    if (!in)
        runtime_error(&p->res[i], s, bad ? "ItemSelector path matched nothing:" : "out of memory", bad);
    else
        run_graph(p->r, &s->branches[p->items ? 0 : i], in, ctx, &p->res[i]);
    cJSON_Delete(ctx);
    snprintf(type, sizeof type, "%s%s", kind, p->res[i].error ? "Failed" : "Succeeded");
    asl_history_add(p->r->hist, type, d);
}

static void *pool_main(void *arg)
{
    pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int i = p->stop || p->next >= p->n ? -1 : p->next++;
        pthread_mutex_unlock(&p->mu);
        if (i < 0)
            return NULL;
        pool_job(p, i);
        if (p->res[i].error) {
            pthread_mutex_lock(&p->mu);
            p->stop = 1; /* a failed iteration fails the state: start no more */
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* Run p->n jobs on at most `width` threads (the caller's thread included). */
static void pool_run(pool *p, int width)
{
    pthread_t th[64];
    int cap = p->r->opt.max_threads > 0 && p->r->opt.max_threads < 64 ? p->r->opt.max_threads : 64;
    if (width <= 0 || width > p->n)
        width = p->n;
    if (width > cap)
        width = cap;
    int started = 0;
    while (started + 1 < width && !pthread_create(&th[started], NULL, pool_main, p))
        started++;
    pool_main(p);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p->mu);
}

/* Collect results in index order, or the failure of the lowest index. */
static cJSON *pool_collect(pool *p, outcome *o)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < p->n; i++) {
        if (p->res[i].error && !o->error) {
            o->error = p->res[i].error;
            o->cause = p->res[i].cause;
            p->res[i].error = p->res[i].cause = NULL;
        }
        if (arr && p->res[i].out && !o->error) {
            cJSON_AddItemToArray(arr, p->res[i].out);
            p->res[i].out = NULL;
        }
        cJSON_Delete(p->res[i].out);
        free(p->res[i].error);
        free(p->res[i].cause);
    }
    if (!arr && !o->error)
        fail_with(o, "States.Runtime", "out of memory");
    if (o->error) {
        cJSON_Delete(arr);
        return NULL;
    }
    return arr;
}

static cJSON *pool_state(run *r, const asl_state *s, const cJSON *eff, const cJSON *ctx, cJSON **items, int n,
                         outcome *o)
{
    pool p = {r, s, eff, ctx, items, calloc((size_t)n + 1, sizeof(outcome)), n, 0, 0, PTHREAD_MUTEX_INITIALIZER};
    if (!p.res) {
        fail_with(o, "States.Runtime", "out of memory");
        return NULL;
    }
    event(r, s, "StateStarted", "length", cJSON_CreateNumber(n));
    pool_run(&p, s->type == ASL_MAP ? s->max_concurrency : 0);
    cJSON *arr = pool_collect(&p, o);
    free(p.res);
    event(r, s, arr ? "StateSucceeded" : "StateFailed", NULL, NULL);
    return arr;
}

static cJSON *map_action(run *r, const asl_state *s, const cJSON *eff, const cJSON *ctx, outcome *o)
{
    cJSON *list = s->has_items_path ? asl_path_get(&s->items_path, eff, ctx) : cJSON_Duplicate(eff, 1);
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(list);
        runtime_error(o, s, "ItemsPath does not select an array", NULL);
        return NULL;
    }
    int n = cJSON_GetArraySize(list);
    cJSON **items = calloc((size_t)n + 1, sizeof *items);
    cJSON *res = NULL;
    if (!items) {
        fail_with(o, "States.Runtime", "out of memory");
    } else {
        int i = 0;
        for (cJSON *it = list->child; it; it = it->next)
            items[i++] = it;
        res = pool_state(r, s, eff, ctx, items, n, o);
    }
    free(items);
    cJSON_Delete(list);
    return res;
}

static cJSON *parallel_action(run *r, const asl_state *s, const cJSON *eff, const cJSON *ctx, outcome *o)
{
    return pool_state(r, s, eff, ctx, NULL, s->nbranches, o);
}

/* ---- states ---- */

typedef cJSON *(*action_fn)(run *r, const asl_state *s, const cJSON *eff, const cJSON *ctx, outcome *o);

/* Task, Map, Parallel: attempts with Retry, then Catch. raw is taken. */
static void run_action(run *r, const asl_state *s, cJSON *raw, const cJSON *ctx, action_fn fn, outcome *o,
                       const char **next)
{
    cJSON *eff = apply_parameters(s, effective_input(s, raw, ctx, o), ctx, o);
    int attempts[64] = {0}; /* one counter per retrier; parse caps are far above real use */
    cJSON *result = NULL;
    while (eff) {
        result = fn(r, s, eff, ctx, o);
        if (result || !o->error)
            break;
        double d = s->nretry <= 64 ? retry_delay(s, attempts, o->error) : -1;
        if (d < 0)
            break;
        sleep_s(d * r->scale);
        free(o->error);
        free(o->cause);
        o->error = o->cause = NULL;
    }
    cJSON_Delete(eff);
    if (result) {
        o->out = finish_output(s, raw, result, ctx, o);
        return;
    }
    if (!o->error)
        fail_with(o, "States.Runtime", "out of memory");
    else if (!try_catch(s, raw, o, next))
        *next = NULL;
    cJSON_Delete(raw);
}

static const char *choose(const asl_state *s, const cJSON *eff, const cJSON *ctx, outcome *o)
{
    for (int i = 0; i < s->nchoices; i++)
        if (asl_rule_eval(&s->choices[i], eff, ctx))
            return s->choices[i].next;
    if (!s->default_)
        fail_with(o, "States.NoChoiceMatched", s->name);
    return s->default_;
}

/* Pass, Choice, Wait, Succeed, Fail. raw is taken. */
static void run_simple(run *r, const asl_state *s, cJSON *raw, const cJSON *ctx, outcome *o, const char **next)
{
    if (s->type == ASL_FAIL) {
        fail_with(o, s->error ? s->error : "States.Fail", s->cause);
        cJSON_Delete(raw);
        return;
    }
    cJSON *eff = effective_input(s, raw, ctx, o);
    if (eff && s->type == ASL_PASS) {
        eff = apply_parameters(s, eff, ctx, o);
        if (eff && s->result) {
            cJSON_Delete(eff);
            eff = cJSON_Duplicate(s->result, 1);
        }
        o->out = eff ? finish_output(s, raw, eff, ctx, o) : NULL;
        if (!eff)
            cJSON_Delete(raw);
        return;
    }
    cJSON_Delete(raw);
    if (eff && s->type == ASL_CHOICE)
        *next = choose(s, eff, ctx, o);
    if (eff && s->type == ASL_WAIT) {
        cJSON *sec = s->has_seconds_path ? asl_path_get(&s->seconds_path, eff, ctx) : NULL;
        if (s->has_seconds_path && !(cJSON_IsNumber(sec) && sec->valuedouble >= 0))
            runtime_error(o, s, "SecondsPath does not select a non-negative number", NULL);
        else
            sleep_s((sec ? sec->valuedouble : s->seconds) * r->scale);
        cJSON_Delete(sec);
    }
    if (!eff || o->error) {
        cJSON_Delete(eff);
        return;
    }
    /* Choice, Wait, Succeed: output = effective input through OutputPath. */
    o->out = finish_output(&(asl_state){.name = s->name, .result_path_null = 1, .has_output_path = s->has_output_path,
                                        .output_path_null = s->output_path_null, .output_path = s->output_path},
                           eff, cJSON_CreateNull(), ctx, o);
}

static void run_state(run *r, const asl_state *s, cJSON *raw, const cJSON *ctx, outcome *o, const char **next)
{
    *next = s->next;
    if (s->type == ASL_TASK)
        run_action(r, s, raw, ctx, task_action, o, next);
    else if (s->type == ASL_MAP)
        run_action(r, s, raw, ctx, map_action, o, next);
    else if (s->type == ASL_PARALLEL)
        run_action(r, s, raw, ctx, parallel_action, o, next);
    else
        run_simple(r, s, raw, ctx, o, next);
}

/* Walk g from its StartAt on input (taken); ctx is this thread's context. */
static void run_graph(run *r, const asl_graph *g, cJSON *input, cJSON *ctx, outcome *o)
{
    const asl_state *s = &g->states[g->start];
    cJSON *data = input;
    for (;;) {
        ctx_enter(ctx, s->name);
        event(r, s, "StateEntered", "input", cJSON_Duplicate(data, 1));
        const char *next = NULL;
        run_state(r, s, data, ctx, o, &next);
        if (o->error || !o->out) {
            if (!o->error)
                fail_with(o, "States.Runtime", "out of memory");
            return;
        }
        event(r, s, "StateExited", "output", cJSON_Duplicate(o->out, 1));
        if (!next || s->type == ASL_SUCCEED)
            return;
        data = o->out;
        o->out = NULL;
        s = &g->states[asl_graph_find(g, next)];
    }
}

/* ---- executions ---- */

struct pl_asl_execution {
    pl_asl_exec_status status;
    char *output, *error, *cause;
    asl_history *hist;
};

static cJSON *make_context(const pl_asl_options *opt, const cJSON *input)
{
    char now[32];
    asl_now_iso(now, sizeof now);
    const char *id = opt->execution_id ? opt->execution_id : "peerless:execution:local";
    const char *name = strrchr(id, ':') ? strrchr(id, ':') + 1 : id;
    cJSON *ctx = cJSON_CreateObject();
    cJSON *ex = cJSON_AddObjectToObject(ctx, "Execution");
    cJSON *sm = cJSON_AddObjectToObject(ctx, "StateMachine");
    if (!ex || !sm || !cJSON_AddStringToObject(ex, "Id", id) || !cJSON_AddStringToObject(ex, "Name", name) ||
        !cJSON_AddStringToObject(ex, "StartTime", now) || !cJSON_AddStringToObject(sm, "Id", "peerless:stateMachine:local")) {
        cJSON_Delete(ctx);
        return NULL;
    }
    cJSON_AddItemToObject(ex, "Input", cJSON_Duplicate(input, 1));
    return ctx;
}

static void join_orphans(run *r)
{
    for (int i = 0; i < r->norphans; i++) {
        pthread_join(r->orphans[i]->th, NULL);
        call_free(r->orphans[i]);
    }
    free(r->orphans);
}

/* Record the outcome in e and the final history event. */
static int settle(pl_asl_execution *e, outcome *o, pl_err *err)
{
    cJSON *d = cJSON_CreateObject();
    if (o->error) {
        e->status = PL_ASL_FAILED;
        e->error = o->error;
        e->cause = o->cause;
        cJSON_AddStringToObject(d, "error", e->error);
        cJSON_AddStringToObject(d, "cause", e->cause ? e->cause : "");
        asl_history_add(e->hist, "ExecutionFailed", d);
        return PL_OK;
    }
    e->status = PL_ASL_SUCCEEDED;
    e->output = cJSON_PrintUnformatted(o->out);
    cJSON_AddItemToObject(d, "output", o->out);
    asl_history_add(e->hist, "ExecutionSucceeded", d);
    if (!e->output)
        return pl_err_set(err, PL_ERR_NOMEM, "state machine: out of memory printing the output");
    return PL_OK;
}

int pl_asl_execute(const pl_asl_machine *m, const char *input_json, const pl_asl_options *opt,
                   pl_asl_execution **out, pl_err *err)
{
    *out = NULL;
    pl_asl_options none = {0};
    if (!opt)
        opt = &none;
    if (m->has_tasks && !opt->invoke)
        return pl_err_set(err, PL_ERR_ARG, "state machine has Task states but no invoker was given");
    cJSON *input = cJSON_Parse(input_json ? input_json : "{}");
    if (!input)
        return pl_err_set(err, PL_ERR_FORMAT, "execution input is not valid JSON");
    pl_asl_execution *e = calloc(1, sizeof *e);
    run r = {*opt, opt->time_scale > 0 ? opt->time_scale : 1.0, NULL, PTHREAD_MUTEX_INITIALIZER, NULL, 0};
    cJSON *ctx = make_context(opt, input);
    if (!e || !ctx || asl_history_create(&e->hist)) {
        free(e);
        cJSON_Delete(ctx);
        cJSON_Delete(input);
        return pl_err_set(err, PL_ERR_NOMEM, "state machine: out of memory starting the execution");
    }
    r.hist = e->hist;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddItemToObject(d, "input", cJSON_Duplicate(input, 1));
    asl_history_add(e->hist, "ExecutionStarted", d);
    outcome o = {0};
    run_graph(&r, &m->top, input, ctx, &o);
    join_orphans(&r);
    cJSON_Delete(ctx);
    int st = settle(e, &o, err);
    if (st) {
        pl_asl_execution_destroy(e);
        return st;
    }
    *out = e;
    return PL_OK;
}

void pl_asl_execution_destroy(pl_asl_execution *e)
{
    if (!e)
        return;
    free(e->output);
    free(e->error);
    free(e->cause);
    asl_history_destroy(e->hist);
    free(e);
}

pl_asl_exec_status pl_asl_execution_status(const pl_asl_execution *e)
{
    return e->status;
}

const char *pl_asl_execution_output(const pl_asl_execution *e)
{
    return e->output;
}

const char *pl_asl_execution_error(const pl_asl_execution *e)
{
    return e->error;
}

const char *pl_asl_execution_cause(const pl_asl_execution *e)
{
    return e->cause;
}

int pl_asl_execution_history(const pl_asl_execution *e, char **json, pl_err *err)
{
    *json = asl_history_json(e->hist);
    return *json ? PL_OK : pl_err_set(err, PL_ERR_NOMEM, "state machine: out of memory printing the history");
}

int pl_asl_execution_count_events(const pl_asl_execution *e, const char *type)
{
    return asl_history_count(e->hist, type);
}
