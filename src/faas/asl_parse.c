/* asl_parse.c — definition JSON -> validated graph (asl_internal.h).
 *
 * Validation follows the States Language specification: fields allowed per
 * state type (a typo such as "Resouce" is an error, as in AWS), every
 * transition names a state of the same graph, exactly one of Next/End,
 * Retry/Catch field ranges, paths compile, and every state is reachable
 * from StartAt. Messages name the graph, the state and the field. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faas/asl_internal.h"

#define T(x) (1u << (x))
#define WITH_IO (T(ASL_TASK) | T(ASL_PASS) | T(ASL_CHOICE) | T(ASL_WAIT) | T(ASL_SUCCEED) | T(ASL_PARALLEL) | T(ASL_MAP))
#define WITH_NEXT (T(ASL_TASK) | T(ASL_PASS) | T(ASL_WAIT) | T(ASL_PARALLEL) | T(ASL_MAP))
#define WITH_RESULT (T(ASL_TASK) | T(ASL_PASS) | T(ASL_PARALLEL) | T(ASL_MAP))
#define WITH_ERRORS (T(ASL_TASK) | T(ASL_PARALLEL) | T(ASL_MAP))

static const char *const type_names[] = {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"};

static const struct {
    const char *name;
    unsigned types;
} fields[] = {
    {"Type", ~0u}, {"Comment", ~0u}, {"Next", WITH_NEXT}, {"End", WITH_NEXT},
    {"InputPath", WITH_IO}, {"OutputPath", WITH_IO}, {"ResultPath", WITH_RESULT},
    {"Parameters", WITH_RESULT}, {"ResultSelector", WITH_ERRORS}, {"Retry", WITH_ERRORS}, {"Catch", WITH_ERRORS},
    {"Resource", T(ASL_TASK)}, {"TimeoutSeconds", T(ASL_TASK)}, {"HeartbeatSeconds", T(ASL_TASK)},
    {"Result", T(ASL_PASS)}, {"Choices", T(ASL_CHOICE)}, {"Default", T(ASL_CHOICE)},
    {"Seconds", T(ASL_WAIT)}, {"SecondsPath", T(ASL_WAIT)},
    {"Timestamp", T(ASL_WAIT)}, {"TimestampPath", T(ASL_WAIT)}, {"Error", T(ASL_FAIL)}, {"Cause", T(ASL_FAIL)},
    {"Branches", T(ASL_PARALLEL)}, {"ItemsPath", T(ASL_MAP)}, {"ItemSelector", T(ASL_MAP)},
    {"MaxConcurrency", T(ASL_MAP)}, {"Iterator", T(ASL_MAP)}, {"ItemProcessor", T(ASL_MAP)},
};
#define NFIELDS ((int)(sizeof fields / sizeof fields[0]))

typedef struct pctx {
    const char *scope; /* "" or "Map 'X' ItemProcessor: " */
    const char *state;
    pl_err *err;
} pctx;

static int fail(const pctx *c, int status, const char *fmt, const char *a, const char *b)
{
    char what[PL_ERR_MSG_MAX];
    snprintf(what, sizeof what, fmt, a ? a : "", b ? b : "");
    if (c->state)
        return pl_err_set(c->err, status, "%sstate '%.80s': %s", c->scope, c->state, what);
    return pl_err_set(c->err, status, "%s%s", c->scope, what);
}

static int wrap(const pctx *c, int st, const char *field)
{
    return pl_err_wrap(c->err, st, "%sstate '%.80s': %s", c->scope, c->state, field);
}

static int parse_graph(const cJSON *j, asl_graph *g, const char *scope, int item_processor, pl_err *err);

int asl_graph_find(const asl_graph *g, const char *name)
{
    for (int i = 0; name && i < g->nstates; i++)
        if (!strcmp(g->states[i].name, name))
            return i;
    return -1;
}

static int is_int(const cJSON *v, double lo, double hi)
{
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= lo &&
           v->valuedouble <= hi;
}

static int check_fields(const cJSON *j, asl_type t, const pctx *c)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, j) {
        int i = 0;
        while (i < NFIELDS && strcmp(fields[i].name, f->string))
            i++;
        if (i == NFIELDS)
            return fail(c, PL_ERR_FORMAT, "unknown field '%s'", f->string, NULL);
        if (!(fields[i].types & T(t)))
            return fail(c, PL_ERR_FORMAT, "field '%s' is not allowed in a %s state", f->string, type_names[t]);
    }
    return PL_OK;
}

/* Optional path field: absent, null (when allowed) or a compiled path. */
static int get_path(const cJSON *j, const char *name, int reference, int *has, int *null_, asl_path *p,
                    const pctx *c)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    *has = v != NULL;
    if (!v)
        return PL_OK;
    if (cJSON_IsNull(v) && null_) {
        *null_ = 1;
        return PL_OK;
    }
    if (!cJSON_IsString(v))
        return fail(c, PL_ERR_FORMAT, "%s must be a path string%s", name, null_ ? " or null" : "");
    int st = asl_path_compile(v->valuestring, p, c->err);
    if (st)
        return wrap(c, st, name);
    if (reference && (p->wildcard || p->context))
        return fail(c, PL_ERR_FORMAT, "%s '%s' must be a reference path (no '[*]', no '$$')", name, v->valuestring);
    return PL_OK;
}

static int parse_error_names(const cJSON *arr, int last, const char *what, const pctx *c)
{
    char where[64];
    snprintf(where, sizeof where, "%s ErrorEquals", what);
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return fail(c, PL_ERR_FORMAT, "%s must be a non-empty array of error names", where, NULL);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (!cJSON_IsString(e))
            return fail(c, PL_ERR_FORMAT, "%s must hold strings", where, NULL);
        if (!strcmp(e->valuestring, "States.ALL") && (cJSON_GetArraySize(arr) != 1 || !last))
            return fail(c, PL_ERR_FORMAT, "%s: States.ALL must appear alone and in the last %s", where, what);
    }
    return PL_OK;
}

static int parse_retrier(const cJSON *r, int last, asl_retrier *out, const pctx *c)
{
    if (!cJSON_IsObject(r))
        return fail(c, PL_ERR_FORMAT, "Retry entries must be objects", NULL, NULL);
    const cJSON *f;
    cJSON_ArrayForEach(f, r) {
        const char *k = f->string;
        if (strcmp(k, "ErrorEquals") && strcmp(k, "IntervalSeconds") && strcmp(k, "MaxAttempts") &&
            strcmp(k, "BackoffRate") && strcmp(k, "MaxDelaySeconds") && strcmp(k, "Comment"))
            return fail(c, PL_ERR_FORMAT, "unknown field '%s' in Retry", k, NULL);
    }
    out->errors = cJSON_GetObjectItemCaseSensitive(r, "ErrorEquals");
    int st = parse_error_names(out->errors, last, "Retry", c);
    if (st)
        return st;
    const cJSON *iv = cJSON_GetObjectItemCaseSensitive(r, "IntervalSeconds");
    const cJSON *ma = cJSON_GetObjectItemCaseSensitive(r, "MaxAttempts");
    const cJSON *br = cJSON_GetObjectItemCaseSensitive(r, "BackoffRate");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(r, "MaxDelaySeconds");
    if (iv && !is_int(iv, 1, 99999999))
        return fail(c, PL_ERR_FORMAT, "Retry IntervalSeconds must be a positive integer", NULL, NULL);
    if (ma && !is_int(ma, 0, 99999999))
        return fail(c, PL_ERR_FORMAT, "Retry MaxAttempts must be a non-negative integer", NULL, NULL);
    if (br && (!cJSON_IsNumber(br) || !(br->valuedouble >= 1.0) || br->valuedouble > 1e6))
        return fail(c, PL_ERR_FORMAT, "Retry BackoffRate must be a number >= 1.0", NULL, NULL);
    if (md && !is_int(md, 1, 31622400))
        return fail(c, PL_ERR_FORMAT, "Retry MaxDelaySeconds must be a positive integer", NULL, NULL);
    out->interval = iv ? iv->valuedouble : 1.0;
    out->max_attempts = ma ? (int)ma->valuedouble : 3;
    out->backoff = br ? br->valuedouble : 2.0;
    out->max_delay = md ? md->valuedouble : 0.0;
    return PL_OK;
}

static int parse_catcher(const cJSON *r, int last, asl_catcher *out, const pctx *c)
{
    if (!cJSON_IsObject(r))
        return fail(c, PL_ERR_FORMAT, "Catch entries must be objects", NULL, NULL);
    const cJSON *f;
    cJSON_ArrayForEach(f, r) {
        const char *k = f->string;
        if (strcmp(k, "ErrorEquals") && strcmp(k, "Next") && strcmp(k, "ResultPath") && strcmp(k, "Comment"))
            return fail(c, PL_ERR_FORMAT, "unknown field '%s' in Catch", k, NULL);
    }
    out->errors = cJSON_GetObjectItemCaseSensitive(r, "ErrorEquals");
    int st = parse_error_names(out->errors, last, "Catch", c);
    if (st)
        return st;
    const cJSON *nx = cJSON_GetObjectItemCaseSensitive(r, "Next");
    if (!cJSON_IsString(nx))
        return fail(c, PL_ERR_FORMAT, "Catch needs a Next state name", NULL, NULL);
    out->next = nx->valuestring;
    return get_path(r, "ResultPath", 1, &out->has_result_path, &out->result_path_null, &out->result_path, c);
}

static int parse_array(const cJSON *j, const char *name, void **items, int *n, size_t size, const pctx *c)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, name);
    if (!a)
        return PL_OK;
    if (!cJSON_IsArray(a))
        return fail(c, PL_ERR_FORMAT, "%s must be an array", name, NULL);
    int k = cJSON_GetArraySize(a);
    *items = calloc((size_t)k + 1, size);
    if (!*items)
        return fail(c, PL_ERR_NOMEM, "out of memory", NULL, NULL);
    *n = k;
    return PL_OK;
}

static int parse_errors(const cJSON *j, asl_state *s, const pctx *c)
{
    int st = parse_array(j, "Retry", (void **)&s->retry, &s->nretry, sizeof *s->retry, c);
    for (int i = 0; !st && i < s->nretry; i++)
        st = parse_retrier(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "Retry"), i), i == s->nretry - 1,
                           &s->retry[i], c);
    if (!st)
        st = parse_array(j, "Catch", (void **)&s->catch_, &s->ncatch, sizeof *s->catch_, c);
    for (int i = 0; !st && i < s->ncatch; i++)
        st = parse_catcher(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "Catch"), i), i == s->ncatch - 1,
                           &s->catch_[i], c);
    return st;
}

static int parse_template(const cJSON *j, const char *name, const cJSON **out, const pctx *c)
{
    *out = cJSON_GetObjectItemCaseSensitive(j, name);
    if (!*out)
        return PL_OK;
    char where[PL_ERR_MSG_MAX];
    snprintf(where, sizeof where, "%sstate '%.80s': %s", c->scope, c->state, name);
    return asl_template_check(*out, where, c->err);
}

static int parse_io(const cJSON *j, asl_state *s, const pctx *c)
{
    int st = get_path(j, "InputPath", 0, &s->has_input_path, &s->input_path_null, &s->input_path, c);
    if (!st)
        st = get_path(j, "OutputPath", 0, &s->has_output_path, &s->output_path_null, &s->output_path, c);
    if (!st)
        st = get_path(j, "ResultPath", 1, &s->has_result_path, &s->result_path_null, &s->result_path, c);
    if (!st)
        st = parse_template(j, "Parameters", &s->parameters, c);
    if (!st)
        st = parse_template(j, "ResultSelector", &s->result_selector, c);
    return st;
}

static int parse_transition(const cJSON *j, asl_state *s, const pctx *c)
{
    const cJSON *nx = cJSON_GetObjectItemCaseSensitive(j, "Next");
    const cJSON *end = cJSON_GetObjectItemCaseSensitive(j, "End");
    if (s->type == ASL_CHOICE || s->type == ASL_SUCCEED || s->type == ASL_FAIL)
        return PL_OK;
    if (nx && !cJSON_IsString(nx))
        return fail(c, PL_ERR_FORMAT, "Next must be a state name string", NULL, NULL);
    if (end && !cJSON_IsTrue(end))
        return fail(c, PL_ERR_FORMAT, "End must be true when present", NULL, NULL);
    if (nx && end)
        return fail(c, PL_ERR_FORMAT, "has both Next and End", NULL, NULL);
    if (!nx && !end)
        return fail(c, PL_ERR_FORMAT, "needs Next or \"End\": true", NULL, NULL);
    s->next = nx ? nx->valuestring : NULL;
    s->end = end != NULL;
    return PL_OK;
}

static int parse_task(const cJSON *j, asl_state *s, const pctx *c)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "Resource");
    if (!cJSON_IsString(r) || !r->valuestring[0])
        return fail(c, PL_ERR_FORMAT, "Task needs a Resource (function ARN string)", NULL, NULL);
    s->resource = r->valuestring;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "TimeoutSeconds");
    if (t && !is_int(t, 1, 99999999))
        return fail(c, PL_ERR_FORMAT, "TimeoutSeconds must be a positive integer", NULL, NULL);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "HeartbeatSeconds");
    if (h && !is_int(h, 1, 99999999))
        return fail(c, PL_ERR_FORMAT, "HeartbeatSeconds must be a positive integer", NULL, NULL);
    s->timeout = t ? t->valuedouble : 0.0;
    return PL_OK;
}

static int parse_choice(const cJSON *j, asl_state *s, const pctx *c)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "Choices");
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return fail(c, PL_ERR_FORMAT, "Choice needs a non-empty Choices array", NULL, NULL);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "Default");
    if (d && !cJSON_IsString(d))
        return fail(c, PL_ERR_FORMAT, "Default must be a state name string", NULL, NULL);
    s->default_ = d ? d->valuestring : NULL;
    int st = parse_array(j, "Choices", (void **)&s->choices, &s->nchoices, sizeof *s->choices, c);
    char where[PL_ERR_MSG_MAX];
    for (int i = 0; !st && i < s->nchoices; i++) {
        snprintf(where, sizeof where, "%sstate '%.80s': Choices[%d]", c->scope, c->state, i);
        const cJSON *r = cJSON_GetArrayItem(arr, i);
        if (!cJSON_IsObject(r))
            return fail(c, PL_ERR_FORMAT, "Choices entries must be objects", NULL, NULL);
        st = asl_rule_parse(r, &s->choices[i], 1, where, c->err);
    }
    return st;
}

static int parse_wait(const cJSON *j, asl_state *s, const pctx *c)
{
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(j, "Seconds");
    int st = get_path(j, "SecondsPath", 0, &s->has_seconds_path, NULL, &s->seconds_path, c);
    if (st)
        return st;
    if (cJSON_GetObjectItemCaseSensitive(j, "Timestamp") || cJSON_GetObjectItemCaseSensitive(j, "TimestampPath"))
        return fail(c, PL_ERR_UNSUPPORTED, "Wait Timestamp/TimestampPath is not supported (use Seconds)", NULL, NULL);
    if ((!!sec + s->has_seconds_path) != 1)
        return fail(c, PL_ERR_FORMAT, "Wait needs exactly one of Seconds or SecondsPath", NULL, NULL);
    if (sec && !is_int(sec, 0, 99999999))
        return fail(c, PL_ERR_FORMAT, "Seconds must be a non-negative integer", NULL, NULL);
    s->seconds = sec ? sec->valuedouble : 0.0;
    return PL_OK;
}

static int parse_fail(const cJSON *j, asl_state *s, const pctx *c)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "Error");
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(j, "Cause");
    if ((e && !cJSON_IsString(e)) || (ca && !cJSON_IsString(ca)))
        return fail(c, PL_ERR_FORMAT, "Fail Error and Cause must be strings", NULL, NULL);
    s->error = e ? e->valuestring : NULL;
    s->cause = ca ? ca->valuestring : NULL;
    return PL_OK;
}

static int parse_sub(const cJSON *g, asl_graph *out, const char *what, int item_processor, const pctx *c)
{
    char scope[PL_ERR_MSG_MAX];
    snprintf(scope, sizeof scope, "%s%s '%.80s' %s: ", c->scope, item_processor ? "Map" : "Parallel", c->state,
             what);
    if (!cJSON_IsObject(g))
        return fail(c, PL_ERR_FORMAT, "%s must be an object with StartAt and States", what, NULL);
    return parse_graph(g, out, scope, item_processor, c->err);
}

static int parse_parallel(const cJSON *j, asl_state *s, const pctx *c)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "Branches");
    if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) == 0)
        return fail(c, PL_ERR_FORMAT, "Parallel needs a non-empty Branches array", NULL, NULL);
    int st = parse_array(j, "Branches", (void **)&s->branches, &s->nbranches, sizeof *s->branches, c);
    char what[32];
    for (int i = 0; !st && i < s->nbranches; i++) {
        snprintf(what, sizeof what, "Branches[%d]", i);
        st = parse_sub(cJSON_GetArrayItem(b, i), &s->branches[i], what, 0, c);
    }
    return st;
}

static int parse_map(const cJSON *j, asl_state *s, const pctx *c)
{
    const cJSON *ip = cJSON_GetObjectItemCaseSensitive(j, "ItemProcessor");
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, "Iterator");
    if (ip && it)
        return fail(c, PL_ERR_FORMAT, "Map has both ItemProcessor and Iterator", NULL, NULL);
    if (!ip && !it)
        return pl_err_set(c->err, PL_ERR_FORMAT, "%sMap '%.80s': ItemProcessor missing", c->scope, c->state);
    if (cJSON_GetObjectItemCaseSensitive(j, "ItemSelector") && s->parameters)
        return fail(c, PL_ERR_FORMAT, "Map has both ItemSelector and Parameters", NULL, NULL);
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(j, "MaxConcurrency");
    if (mc && !is_int(mc, 0, 99999999))
        return fail(c, PL_ERR_FORMAT, "MaxConcurrency must be a non-negative integer", NULL, NULL);
    s->max_concurrency = mc ? (int)mc->valuedouble : 0;
    int st = get_path(j, "ItemsPath", 0, &s->has_items_path, NULL, &s->items_path, c);
    const cJSON *sel = NULL;
    if (!st)
        st = parse_template(j, "ItemSelector", &sel, c);
    if (sel)
        s->parameters = sel; /* ItemSelector is the newer name of a Map's Parameters */
    if (!st && !(s->branches = calloc(1, sizeof *s->branches)))
        st = fail(c, PL_ERR_NOMEM, "out of memory", NULL, NULL);
    if (!st) {
        s->nbranches = 1;
        st = parse_sub(ip ? ip : it, s->branches, ip ? "ItemProcessor" : "Iterator", 1, c);
    }
    return st;
}

static int parse_type(const cJSON *j, asl_state *s, const pctx *c)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "Type");
    if (!cJSON_IsString(t))
        return fail(c, PL_ERR_FORMAT, "missing Type", NULL, NULL);
    for (int i = 0; i < (int)(sizeof type_names / sizeof type_names[0]); i++)
        if (!strcmp(type_names[i], t->valuestring)) {
            s->type = (asl_type)i;
            return PL_OK;
        }
    return fail(c, PL_ERR_FORMAT, "unknown Type '%.60s' (expected Task, Pass, Choice, Wait, Succeed, Fail, Parallel or Map)",
                t->valuestring, NULL);
}

static int parse_state(const cJSON *j, asl_state *s, const pctx *c)
{
    s->name = j->string;
    if (!cJSON_IsObject(j))
        return fail(c, PL_ERR_FORMAT, "must be an object", NULL, NULL);
    int st = parse_type(j, s, c);
    if (!st)
        st = check_fields(j, s->type, c);
    if (!st)
        st = parse_transition(j, s, c);
    if (!st)
        st = parse_io(j, s, c);
    if (!st)
        st = parse_errors(j, s, c);
    if (st)
        return st;
    s->result = cJSON_GetObjectItemCaseSensitive(j, "Result");
    switch (s->type) {
    case ASL_TASK: return parse_task(j, s, c);
    case ASL_CHOICE: return parse_choice(j, s, c);
    case ASL_WAIT: return parse_wait(j, s, c);
    case ASL_FAIL: return parse_fail(j, s, c);
    case ASL_PARALLEL: return parse_parallel(j, s, c);
    case ASL_MAP: return parse_map(j, s, c);
    default: return PL_OK;
    }
}

static int check_target(const asl_graph *g, const char *field, const char *name, const pctx *c)
{
    if (asl_graph_find(g, name) < 0)
        return fail(c, PL_ERR_FORMAT, "%s '%.80s' is not a state", field, name);
    return PL_OK;
}

/* Every transition of state s names a state of g; marks them in seen[]. */
static int check_transitions(const asl_graph *g, const asl_state *s, int *seen, const pctx *c)
{
    int st = s->next ? check_target(g, "Next", s->next, c) : PL_OK;
    if (!st && s->default_)
        st = check_target(g, "Default", s->default_, c);
    for (int i = 0; !st && i < s->nchoices; i++)
        st = check_target(g, "Choices Next", s->choices[i].next, c);
    for (int i = 0; !st && i < s->ncatch; i++)
        st = check_target(g, "Catch Next", s->catch_[i].next, c);
    if (st)
        return st;
    const char *targets[2] = {s->next, s->default_};
    for (int i = 0; i < 2; i++)
        if (targets[i])
            seen[asl_graph_find(g, targets[i])] = 1;
    for (int i = 0; i < s->nchoices; i++)
        seen[asl_graph_find(g, s->choices[i].next)] = 1;
    for (int i = 0; i < s->ncatch; i++)
        seen[asl_graph_find(g, s->catch_[i].next)] = 1;
    return PL_OK;
}

/* Transitions valid, and every state reachable from StartAt (fixpoint). */
static int check_graph(const asl_graph *g, const char *scope, pl_err *err)
{
    int *seen = calloc((size_t)g->nstates, sizeof *seen);
    int *done = calloc((size_t)g->nstates, sizeof *done);
    int st = seen && done ? PL_OK : pl_err_set(err, PL_ERR_NOMEM, "%sout of memory", scope);
    if (!st)
        seen[g->start] = 1;
    for (int again = 1; !st && again;) {
        again = 0;
        for (int i = 0; !st && i < g->nstates; i++) {
            if (!seen[i] || done[i])
                continue;
            pctx c = {scope, g->states[i].name, err};
            done[i] = again = 1;
            st = check_transitions(g, &g->states[i], seen, &c);
        }
    }
    for (int i = 0; !st && i < g->nstates; i++)
        if (!seen[i]) {
            pctx c = {scope, g->states[i].name, err};
            st = fail(&c, PL_ERR_FORMAT, "is not reachable from StartAt", NULL, NULL);
        }
    free(seen);
    free(done);
    return st;
}

static int check_graph_fields(const cJSON *j, int item_processor, const pctx *c)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, j) {
        const char *k = f->string;
        int ok = !strcmp(k, "StartAt") || !strcmp(k, "States") || !strcmp(k, "Comment") ||
                 (item_processor && !strcmp(k, "ProcessorConfig")) ||
                 (!strcmp(c->scope, "") && (!strcmp(k, "Version") || !strcmp(k, "TimeoutSeconds")));
        if (!ok)
            return fail(c, PL_ERR_FORMAT, "unknown field '%s'", k, NULL);
    }
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(j, "ProcessorConfig");
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(pc, "Mode");
    if (pc && mode && !(cJSON_IsString(mode) && !strcmp(mode->valuestring, "INLINE")))
        return fail(c, PL_ERR_UNSUPPORTED, "ProcessorConfig Mode must be \"INLINE\" (DISTRIBUTED is not supported)",
                    NULL, NULL);
    return PL_OK;
}

static int parse_graph(const cJSON *j, asl_graph *g, const char *scope, int item_processor, pl_err *err)
{
    pctx c = {scope, NULL, err};
    int st = check_graph_fields(j, item_processor, &c);
    if (st)
        return st;
    const cJSON *sa = cJSON_GetObjectItemCaseSensitive(j, "StartAt");
    const cJSON *states = cJSON_GetObjectItemCaseSensitive(j, "States");
    if (!cJSON_IsString(sa))
        return fail(&c, PL_ERR_FORMAT, "missing StartAt (the name of the first state)", NULL, NULL);
    if (!cJSON_IsObject(states) || !states->child)
        return fail(&c, PL_ERR_FORMAT, "States must be a non-empty object", NULL, NULL);
    g->start_at = sa->valuestring;
    g->nstates = cJSON_GetArraySize(states);
    if (!(g->states = calloc((size_t)g->nstates, sizeof *g->states)))
        return fail(&c, PL_ERR_NOMEM, "out of memory", NULL, NULL);
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, states) {
        c.state = s->string;
        if (strlen(s->string) == 0 || strlen(s->string) > 80)
            return fail(&c, PL_ERR_FORMAT, "state names must have 1 to 80 characters", NULL, NULL);
        if ((st = parse_state(s, &g->states[i], &c)))
            return st;
        if (asl_graph_find(g, s->string) < i)
            return fail(&c, PL_ERR_FORMAT, "duplicate state name", NULL, NULL);
        i++;
    }
    c.state = NULL;
    if ((g->start = asl_graph_find(g, g->start_at)) < 0)
        return fail(&c, PL_ERR_FORMAT, "StartAt '%.80s' is not a state", g->start_at, NULL);
    return check_graph(g, scope, err);
}

static void free_graph(asl_graph *g);

static void free_state(asl_state *s)
{
    asl_path_free(&s->input_path);
    asl_path_free(&s->output_path);
    asl_path_free(&s->result_path);
    asl_path_free(&s->seconds_path);
    asl_path_free(&s->items_path);
    for (int i = 0; i < s->ncatch; i++)
        asl_path_free(&s->catch_[i].result_path);
    for (int i = 0; i < s->nchoices; i++)
        asl_rule_free(&s->choices[i]);
    for (int i = 0; s->branches && i < s->nbranches; i++)
        free_graph(&s->branches[i]);
    free(s->retry);
    free(s->catch_);
    free(s->choices);
    free(s->branches);
}

static void free_graph(asl_graph *g)
{
    /* States parsed only partly (an error midway) are zeroed past the failure. */
    for (int i = 0; g->states && i < g->nstates; i++)
        free_state(&g->states[i]);
    free(g->states);
}

void pl_asl_destroy(pl_asl_machine *m)
{
    if (!m)
        return;
    free_graph(&m->top);
    cJSON_Delete(m->doc);
    free(m);
}

static int graph_has_tasks(const asl_graph *g)
{
    for (int i = 0; i < g->nstates; i++) {
        if (g->states[i].type == ASL_TASK)
            return 1;
        for (int b = 0; b < g->states[i].nbranches; b++)
            if (graph_has_tasks(&g->states[i].branches[b]))
                return 1;
    }
    return 0;
}

int pl_asl_parse(const char *json, size_t len, pl_asl_machine **out, pl_err *err)
{
    *out = NULL;
    pl_asl_machine *m = calloc(1, sizeof *m);
    if (!m)
        return pl_err_set(err, PL_ERR_NOMEM, "state machine: out of memory");
    const char *end = NULL;
    m->doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    int st = PL_OK;
    if (!m->doc)
        st = pl_err_set(err, PL_ERR_FORMAT, "state machine definition is not valid JSON (error at byte %zu)",
                        end && end >= json ? (size_t)(end - json) : (size_t)0);
    else if (!cJSON_IsObject(m->doc))
        st = pl_err_set(err, PL_ERR_FORMAT, "state machine definition must be a JSON object");
    if (!st)
        st = parse_graph(m->doc, &m->top, "", 0, err);
    if (st) {
        pl_asl_destroy(m);
        return st;
    }
    m->has_tasks = graph_has_tasks(&m->top);
    *out = m;
    return PL_OK;
}

int pl_asl_state_count(const pl_asl_machine *m)
{
    return m ? m->top.nstates : 0;
}

const char *pl_asl_start_at(const pl_asl_machine *m)
{
    return m ? m->top.start_at : NULL;
}
