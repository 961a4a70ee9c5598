/* sfn_api.c — the AWS Step Functions API (JSON 1.0 protocol: POST / with
 * X-Amz-Target: AWSStepFunctions.ACTION) on the platform's port.
 *
 * State machines are parsed with the local ASL interpreter (asl.h); each
 * execution runs on its own detached thread, its Task states invoking the
 * platform's functions directly (faas_invoke_local). Records live until the
 * platform is destroyed. One mutex (faas_sfn.mu) guards every record;
 * machines are immutable once created (deletion only marks them). */
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faas/faas_impl.h"
#include "peerless/asl.h"

#define ACCOUNT "000000000000"
#define NAME_MAX_LEN 80
#define ARN_MAX_LEN 256
#define INPUT_MAX (256u * 1024u) /* Step Functions' execution input limit */
#define DEFINITION_MAX (1024u * 1024u)
#define LAMBDA_INVOKE "arn:aws:states:::lambda:invoke"
#define TARGET_PREFIX "AWSStepFunctions."

typedef struct sfn_machine {
    char *name, *arn, *definition, *role_arn;
    pl_asl_machine *m;
    double created;      /* epoch seconds */
    double timeout_s;    /* the definition's top-level TimeoutSeconds; 0 none */
    int deleted;
    struct sfn_machine *next;
} sfn_machine;

typedef struct sfn_exec {
    pl_faas *p;
    sfn_machine *sm;
    char *arn, *name, *input;
    char status[12];     /* RUNNING SUCCEEDED FAILED TIMED_OUT ABORTED */
    char *output, *error, *cause;
    double start, stop;  /* epoch seconds; stop 0 while running */
    int stop_requested;  /* StopExecution or timeout: tasks are refused */
    pl_asl_execution *result; /* when the interpreter has finished */
    struct sfn_exec *next;
} sfn_exec;

typedef struct faas_sfn {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when an execution thread ends */
    sfn_machine *machines;
    sfn_exec *execs;   /* newest first */
    int running, stopping;
    unsigned long long seq;
} faas_sfn;

/* An API answer: HTTP status, body (malloc) or an error. */
typedef struct sfn_answer {
    unsigned status;
    char *body;
    char type[64];
    char msg[600];
} sfn_answer;

static int fail(sfn_answer *a, const char *type, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(sfn_answer *a, const char *type, const char *fmt, ...)
{
    a->status = 400;
    snprintf(a->type, sizeof a->type, "%s", type);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->msg, sizeof a->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* Takes o: prints it as the 200 answer. */
static int answer(sfn_answer *a, cJSON *o)
{
    a->body = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!a->body)
        return fail(a, "ServiceException", "out of memory");
    a->status = 200;
    return 0;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000L) * 1e-3; /* AWS dates have ms resolution */
}

/* ---- validation ---------------------------------------------------------- */

/* Names of state machines and executions: 1..80 characters, none of AWS's
 * forbidden ones (whitespace, brackets, wildcards, specials, controls). */
static int bad_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > NAME_MAX_LEN)
        return 1;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c <= 0x20 || *c == 0x7f || strchr("<>{}[]?*\"#%\\^|~`$&,;:/", *c))
            return 1;
    return 0;
}

/* A string member: required or not, at most maxlen bytes. */
static int get_str(const cJSON *req, const char *field, int required, size_t maxlen, const char **out, sfn_answer *a)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, field);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return fail(a, "ValidationException",
                        "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not "
                        "be null",
                        field);
        return 0;
    }
    if (!cJSON_IsString(v))
        return fail(a, "SerializationException", "'%s' must be a string", field);
    if (strlen(v->valuestring) > maxlen)
        return fail(a, "ValidationException",
                    "1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length "
                    "less than or equal to %zu",
                    field, maxlen);
    *out = v->valuestring;
    return 0;
}

/* arn:PARTITION:states:REGION:ACCOUNT:KIND:... with at least `parts` fields. */
static int arn_of_kind(const char *arn, const char *kind, int parts)
{
    char copy[ARN_MAX_LEN + 1], *f[10] = {0};
    int n = 0;
    if (strlen(arn) > ARN_MAX_LEN)
        return 0;
    snprintf(copy, sizeof copy, "%s", arn);
    for (char *c = copy, *t; n < 10 && (t = strsep(&c, ":")) != NULL;)
        f[n++] = t;
    return n == parts && !strcmp(f[0], "arn") && *f[1] && !strcmp(f[2], "states") && *f[3] && *f[4] &&
           !strcmp(f[5], kind) && *f[6] && (parts < 8 || *f[7]);
}

static int get_arn(const cJSON *req, const char *field, const char *kind, int parts, const char **out, sfn_answer *a)
{
    if (get_str(req, field, 1, ARN_MAX_LEN, out, a))
        return -1;
    if (!arn_of_kind(*out, kind, parts))
        return fail(a, "InvalidArn", "Invalid Arn: '%s' (expected arn:aws:states:REGION:ACCOUNT:%s:%s)", *out, kind,
                    parts == 7 ? "NAME" : "STATE_MACHINE:NAME");
    return 0;
}

static int get_max_results(const cJSON *req, int *max, int *start, sfn_answer *a)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(req, "maxResults");
    const char *tok = NULL;
    *max = 100;
    *start = 0;
    if (m && (!cJSON_IsNumber(m) || m->valuedouble < 0 || m->valuedouble > 1000 || m->valuedouble != (int)m->valuedouble))
        return fail(a, "ValidationException", "maxResults: expected an integer in [0, 1000]");
    if (m && m->valueint > 0)
        *max = m->valueint;
    if (get_str(req, "nextToken", 0, 1024, &tok, a))
        return -1;
    char *end = NULL;
    if (tok && ((*start = (int)strtol(tok, &end, 10)) < 0 || !*tok || *end))
        return fail(a, "InvalidToken", "Invalid Token: '%s'", tok);
    return 0;
}

/* Every Task Resource must be something this platform can run. */
static int check_resources(const cJSON *node, char *bad, size_t cap)
{
    if (cJSON_IsObject(node)) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(node, "Type");
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(node, "Resource");
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "Task") && cJSON_IsString(res)) {
            const char *r = res->valuestring;
            int ok = !strcmp(r, LAMBDA_INVOKE) || (!strncmp(r, "arn:", 4) && strstr(r, ":lambda:") &&
                                                   strstr(r, ":function:") && strstr(r, ":function:")[10]);
            if (!ok) {
                snprintf(bad, cap, "%s", r);
                return -1;
            }
        }
    }
    const cJSON *child;
    cJSON_ArrayForEach(child, node)
    {
        if (check_resources(child, bad, cap))
            return -1;
    }
    return 0;
}

/* ---- registry (locked) --------------------------------------------------- */

static sfn_machine *find_machine(faas_sfn *s, const char *arn)
{
    for (sfn_machine *m = s->machines; m; m = m->next)
        if (!m->deleted && !strcmp(m->arn, arn))
            return m;
    return NULL;
}

static sfn_exec *find_exec(faas_sfn *s, const char *arn)
{
    for (sfn_exec *e = s->execs; e; e = e->next)
        if (!strcmp(e->arn, arn))
            return e;
    return NULL;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? strdup(v) : NULL;
}

/* End a running execution with status (TIMED_OUT, ABORTED) at time t. */
static void close_exec(sfn_exec *e, const char *status, const char *error, const char *cause, double t)
{
    snprintf(e->status, sizeof e->status, "%s", status);
    set_str(&e->error, error);
    set_str(&e->cause, cause);
    e->stop = t;
    e->stop_requested = 1;
}

/* The state machine's TimeoutSeconds passes lazily: whoever looks sees it. */
static void refresh(sfn_exec *e)
{
    if (strcmp(e->status, "RUNNING") || e->sm->timeout_s <= 0)
        return;
    double end = e->start + e->sm->timeout_s;
    if (wall_now() >= end) {
        char cause[96];
        snprintf(cause, sizeof cause, "The execution timed out after %g seconds (the state machine's TimeoutSeconds)",
                 e->sm->timeout_s);
        close_exec(e, "TIMED_OUT", "States.Timeout", cause, end);
    }
}

static char *machine_arn(const pl_faas *p, const char *name)
{
    size_t n = strlen(p->region) + strlen(name) + 64;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "arn:aws:states:%s:" ACCOUNT ":stateMachine:%s", p->region, name);
    return s;
}

static void machine_free(sfn_machine *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->arn);
    free(m->definition);
    free(m->role_arn);
    pl_asl_destroy(m->m);
    free(m);
}

static void exec_free(sfn_exec *e)
{
    if (!e)
        return;
    free(e->arn);
    free(e->name);
    free(e->input);
    free(e->output);
    free(e->error);
    free(e->cause);
    pl_asl_execution_destroy(e->result);
    free(e);
}

int faas_sfn_create(pl_faas *p)
{
    faas_sfn *s = calloc(1, sizeof *s);
    if (!s)
        return PL_ERR_NOMEM;
    pthread_mutex_init(&s->mu, NULL);
    faas_cond_init(&s->cv);
    p->sfn = s;
    return PL_OK;
}

void faas_sfn_abort_all(pl_faas *p)
{
    faas_sfn *s = p->sfn;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    for (sfn_exec *e = s->execs; e; e = e->next)
        e->stop_requested = 1;
    pthread_mutex_unlock(&s->mu);
}

void faas_sfn_destroy(pl_faas *p)
{
    faas_sfn *s = p->sfn;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    while (s->running)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    while (s->execs) {
        sfn_exec *e = s->execs;
        s->execs = e->next;
        exec_free(e);
    }
    while (s->machines) {
        sfn_machine *m = s->machines;
        s->machines = m->next;
        machine_free(m);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    p->sfn = NULL;
}

/* ---- executions ---------------------------------------------------------- */

/* The function a Task names: "arn:...:function:NAME[:QUALIFIER]", or a
 * FunctionName (NAME, NAME:QUALIFIER, a partial or full ARN). */
static void function_name(const char *ref, char *out, size_t cap)
{
    const char *f = strstr(ref, ":function:");
    const char *s = f ? f + 10 : ref;
    size_t n = strcspn(s, ":");
    snprintf(out, cap, "%.*s", (int)n, s);
}

static int task_error(char **error, char **cause, const char *e, const char *c)
{
    *error = strdup(e);
    *cause = strdup(c);
    return 1;
}

/* pl_asl_invoke_fn: run the Task on this platform's functions. */
static int sfn_invoke(void *ctx, const char *resource, const char *input, char **output, char **error, char **cause)
{
    sfn_exec *e = ctx;
    pl_faas *p = e->p;
    pthread_mutex_lock(&p->sfn->mu);
    int stopped = e->stop_requested;
    pthread_mutex_unlock(&p->sfn->mu);
    if (stopped)
        return task_error(error, cause, "States.Runtime", "the execution was stopped; no new tasks run");
    int wrap = !strcmp(resource, LAMBDA_INVOKE);
    char name[160], msg[400];
    char *payload = NULL;
    if (wrap) { /* Parameters: {"FunctionName": ..., "Payload": ...} */
        cJSON *in = cJSON_Parse(input);
        const char *fn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "FunctionName"));
        const cJSON *pl = cJSON_GetObjectItemCaseSensitive(in, "Payload");
        if (fn)
            function_name(fn, name, sizeof name);
        payload = fn ? (pl ? cJSON_PrintUnformatted(pl) : strdup("{}")) : NULL;
        cJSON_Delete(in);
        if (!fn)
            return task_error(error, cause, "States.Runtime",
                              LAMBDA_INVOKE " needs Parameters with a FunctionName string (and a Payload)");
    } else {
        function_name(resource, name, sizeof name);
        payload = strdup(input);
    }
    if (!payload)
        return task_error(error, cause, "States.Runtime", "out of memory");
    char *body = NULL;
    int ferr = 0;
    int rc = faas_invoke_local(p, name, payload, strlen(payload), &body, &ferr);
    free(payload);
    if (rc == FAAS_LOCAL_NOTFOUND) {
        snprintf(msg, sizeof msg, "Function not found: arn:aws:lambda:%s:" ACCOUNT ":function:%s (Service: Lambda, Status Code: 404)",
                 p->region, name);
        return task_error(error, cause, "Lambda.ResourceNotFoundException", msg);
    }
    if (rc == FAAS_LOCAL_THROTTLED)
        return task_error(error, cause, "Lambda.TooManyRequestsException", "Rate Exceeded. (Service: Lambda, Status Code: 429)");
    if (rc != FAAS_LOCAL_OK)
        return task_error(error, cause, "Lambda.ServiceException",
                          rc == FAAS_LOCAL_STOPPING ? "the function platform is stopping" : "out of memory");
    if (ferr) { /* the function's errorType names the error; the cause is its error document */
        cJSON *j = cJSON_Parse(body);
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "errorType"));
        *error = strdup(type && *type ? type : "Lambda.Unknown");
        cJSON_Delete(j);
        *cause = body;
        return 1;
    }
    if (!wrap) {
        *output = body;
        return 0;
    }
    cJSON *w = cJSON_CreateObject(), *v = cJSON_Parse(body);
    cJSON_AddStringToObject(w, "ExecutedVersion", "$LATEST");
    cJSON_AddItemToObject(w, "Payload", v ? v : cJSON_CreateString(body));
    cJSON_AddNumberToObject(w, "StatusCode", 200);
    free(body);
    *output = cJSON_PrintUnformatted(w);
    cJSON_Delete(w);
    return *output ? 0 : task_error(error, cause, "States.Runtime", "out of memory");
}

static void *exec_main(void *arg)
{
    sfn_exec *e = arg;
    faas_sfn *s = e->p->sfn;
    pl_asl_options o = {sfn_invoke, e, 1.0, 0, e->arn};
    pl_asl_execution *res = NULL;
    pl_err err = {0, ""};
    int st = pl_asl_execute(e->sm->m, e->input, &o, &res, &err);
    pthread_mutex_lock(&s->mu);
    e->result = res;
    refresh(e);
    if (!strcmp(e->status, "RUNNING")) {
        e->stop = wall_now();
        if (st != PL_OK) {
            close_exec(e, "FAILED", "States.Runtime", err.msg, e->stop);
        } else if (pl_asl_execution_status(res) == PL_ASL_SUCCEEDED) {
            snprintf(e->status, sizeof e->status, "SUCCEEDED");
            set_str(&e->output, pl_asl_execution_output(res));
        } else {
            close_exec(e, "FAILED", pl_asl_execution_error(res), pl_asl_execution_cause(res), e->stop);
        }
    }
    s->running--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- actions ------------------------------------------------------------- */

/* Create (locked): idempotent for the same definition and role. */
static int create_machine(pl_faas *p, const char *name, const char *definition, const char *role, sfn_answer *a,
                          sfn_machine **out)
{
    faas_sfn *s = p->sfn;
    if (bad_name(name))
        return fail(a, "InvalidName",
                    "Invalid Name: '%s' (1-80 characters; no whitespace, brackets, wildcards or \"#%%\\^|~`$&,;:/)", name);
    if (strlen(definition) > DEFINITION_MAX)
        return fail(a, "InvalidDefinition", "Invalid State Machine Definition: longer than %u bytes", DEFINITION_MAX);
    pl_err err = {0, ""};
    pl_asl_machine *m = NULL;
    if (pl_asl_parse(definition, strlen(definition), &m, &err) != PL_OK)
        return fail(a, "InvalidDefinition", "Invalid State Machine Definition: %s", err.msg);
    cJSON *def = cJSON_Parse(definition);
    char bad[300] = "";
    int unsupported = check_resources(def, bad, sizeof bad);
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(def, "TimeoutSeconds");
    double timeout = cJSON_IsNumber(to) ? to->valuedouble : 0;
    cJSON_Delete(def);
    if (unsupported || (to && (!cJSON_IsNumber(to) || timeout < 1 || timeout > 99999999))) {
        pl_asl_destroy(m);
        if (unsupported)
            return fail(a, "InvalidDefinition",
                        "Invalid State Machine Definition: Task Resource '%s' cannot run on the local platform "
                        "(expected arn:aws:lambda:REGION:ACCOUNT:function:NAME or " LAMBDA_INVOKE ")",
                        bad);
        return fail(a, "InvalidDefinition", "Invalid State Machine Definition: TimeoutSeconds must be a positive integer");
    }
    char *arn = machine_arn(p, name);
    for (sfn_machine *x = s->machines; arn && x; x = x->next)
        if (!x->deleted && !strcmp(x->arn, arn)) {
            int same = !strcmp(x->definition, definition) && !strcmp(x->role_arn, role);
            pl_asl_destroy(m);
            free(arn);
            if (!same)
                return fail(a, "StateMachineAlreadyExists",
                            "State Machine Already Exists: '%s' (with another definition or role)", x->arn);
            *out = x;
            return 0;
        }
    sfn_machine *n = calloc(1, sizeof *n);
    if (n) {
        n->name = strdup(name);
        n->definition = strdup(definition);
        n->role_arn = strdup(role);
    }
    if (!n || !arn || !n->name || !n->definition || !n->role_arn) {
        free(arn);
        pl_asl_destroy(m);
        machine_free(n);
        return fail(a, "ServiceException", "out of memory");
    }
    n->arn = arn;
    n->m = m;
    n->created = wall_now();
    n->timeout_s = timeout;
    n->next = s->machines;
    s->machines = n;
    *out = n;
    return 0;
}

static int act_create(pl_faas *p, const cJSON *req, sfn_answer *a)
{
    const char *name, *def, *role, *type;
    if (get_str(req, "name", 1, NAME_MAX_LEN, &name, a) || get_str(req, "definition", 1, DEFINITION_MAX, &def, a) ||
        get_str(req, "roleArn", 1, ARN_MAX_LEN, &role, a) || get_str(req, "type", 0, 16, &type, a))
        return -1;
    if (strncmp(role, "arn:", 4) || !strstr(role, ":iam::") || !strstr(role, ":role/"))
        return fail(a, "InvalidArn", "Invalid Arn: 'roleArn' '%s' (expected arn:aws:iam::ACCOUNT:role/NAME)", role);
    if (type && strcmp(type, "STANDARD"))
        return fail(a, "ValidationException", "type '%s': the local platform runs STANDARD state machines only", type);
    pthread_mutex_lock(&p->sfn->mu);
    sfn_machine *m = NULL;
    int rc = create_machine(p, name, def, role, a, &m);
    cJSON *o = rc ? NULL : cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "stateMachineArn", m->arn);
        cJSON_AddNumberToObject(o, "creationDate", m->created);
    }
    pthread_mutex_unlock(&p->sfn->mu);
    return rc ? rc : answer(a, o);
}

/* The machine named by req's stateMachineArn (locked). */
static sfn_machine *req_machine(pl_faas *p, const cJSON *req, sfn_answer *a)
{
    const char *arn;
    if (get_arn(req, "stateMachineArn", "stateMachine", 7, &arn, a))
        return NULL;
    sfn_machine *m = find_machine(p->sfn, arn);
    if (!m) {
        int n = 0;
        for (sfn_machine *x = p->sfn->machines; x; x = x->next)
            n += !x->deleted;
        fail(a, "StateMachineDoesNotExist",
             "State Machine Does Not Exist: '%s' (this platform, region %s, has %d state machine%s)", arn, p->region,
             n, n == 1 ? "" : "s");
    }
    return m;
}

static int act_describe_machine(pl_faas *p, const cJSON *req, sfn_answer *a)
{
    pthread_mutex_lock(&p->sfn->mu);
    sfn_machine *m = req_machine(p, req, a);
    cJSON *o = m ? cJSON_CreateObject() : NULL;
    if (o) {
        cJSON_AddStringToObject(o, "stateMachineArn", m->arn);
        cJSON_AddStringToObject(o, "name", m->name);
        cJSON_AddStringToObject(o, "status", "ACTIVE");
        cJSON_AddStringToObject(o, "definition", m->definition);
        cJSON_AddStringToObject(o, "roleArn", m->role_arn);
        cJSON_AddStringToObject(o, "type", "STANDARD");
        cJSON_AddNumberToObject(o, "creationDate", m->created);
    }
    pthread_mutex_unlock(&p->sfn->mu);
    return m ? answer(a, o) : -1;
}

static int act_list_machines(pl_faas *p, const cJSON *req, sfn_answer *a)
{
    int max, start;
    if (get_max_results(req, &max, &start, a))
        return -1;
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "stateMachines");
    int i = 0, more = 0;
    pthread_mutex_lock(&p->sfn->mu);
    for (sfn_machine *m = p->sfn->machines; m; m = m->next) {
        if (m->deleted || i++ < start)
            continue;
        if (cJSON_GetArraySize(arr) == max) {
            more = 1;
            break;
        }
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "stateMachineArn", m->arn);
        cJSON_AddStringToObject(it, "name", m->name);
        cJSON_AddStringToObject(it, "type", "STANDARD");
        cJSON_AddNumberToObject(it, "creationDate", m->created);
        cJSON_AddItemToArray(arr, it);
    }
    pthread_mutex_unlock(&p->sfn->mu);
    if (more) {
        char tok[24];
        snprintf(tok, sizeof tok, "%d", start + max);
        cJSON_AddStringToObject(o, "nextToken", tok);
    }
    return answer(a, o);
}

static int act_delete_machine(pl_faas *p, const cJSON *req, sfn_answer *a)
{
    const char *arn;
    if (get_arn(req, "stateMachineArn", "stateMachine", 7, &arn, a))
        return -1;
    pthread_mutex_lock(&p->sfn->mu);
    sfn_machine *m = find_machine(p->sfn, arn);
    if (m) /* running executions keep the parsed machine: it is freed at destroy */
        m->deleted = 1;
    pthread_mutex_unlock(&p->sfn->mu);
    return answer(a, cJSON_CreateObject());
}

static int start_locked(pl_faas *p, sfn_machine *m, const char *name, const char *input, sfn_answer *a,
                        sfn_exec **out)
{
    faas_sfn *s = p->sfn;
    char gen[48], *arn;
    if (!name) { /* a UUID-like name, as AWS generates */
        unsigned long long k = ++s->seq, t = (unsigned long long)(wall_now() * 1000);
        snprintf(gen, sizeof gen, "%08llx-%04llx-4%03llx-8%03llx-%012llx", t & 0xffffffffULL, (t >> 32) & 0xffffULL,
                 (k >> 12) & 0xfffULL, k & 0xfffULL, (k * 0x9e3779b97f4a7c15ULL) & 0xffffffffffffULL);
        name = gen;
    }
    size_t n = strlen(m->arn) + strlen(name) + 16;
    if (!(arn = malloc(n)))
        return fail(a, "ServiceException", "out of memory");
    /* arn:aws:states:R:A:stateMachine:SM -> arn:aws:states:R:A:execution:SM:NAME */
    const char *sm = strstr(m->arn, ":stateMachine:");
    snprintf(arn, n, "%.*s:execution:%s:%s", (int)(sm - m->arn), m->arn, sm + 14, name);
    sfn_exec *old = find_exec(s, arn);
    if (old) {
        refresh(old);
        int same = !strcmp(old->status, "RUNNING") && !strcmp(old->input, input);
        free(arn);
        if (!same)
            return fail(a, "ExecutionAlreadyExists", "Execution Already Exists: '%s'", old->arn);
        *out = old; /* idempotent: same name and input while running */
        return 0;
    }
    if (s->stopping) {
        free(arn);
        return fail(a, "ServiceException", "the platform is stopping");
    }
    sfn_exec *e = calloc(1, sizeof *e);
    if (e) {
        e->name = strdup(name);
        e->input = strdup(input);
    }
    if (!e || !e->name || !e->input) {
        free(arn);
        exec_free(e);
        return fail(a, "ServiceException", "out of memory");
    }
    e->arn = arn;
    e->p = p;
    e->sm = m;
    snprintf(e->status, sizeof e->status, "RUNNING");
    e->start = wall_now();
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&t, &at, exec_main, e) == 0;
    pthread_attr_destroy(&at);
    if (!ok) {
        exec_free(e);
        return fail(a, "ExecutionLimitExceeded", "cannot start a thread for the execution");
    }
    s->running++;
    e->next = s->execs;
    s->execs = e;
    *out = e;
    return 0;
}

static int act_start(pl_faas *p, const cJSON *req, sfn_answer *a)
{
    const char *name, *input;
    if (get_str(req, "name", 0, NAME_MAX_LEN, &name, a) || get_str(req, "input", 0, INPUT_MAX, &input, a))
        return -1;
    if (name && bad_name(name))
        return fail(a, "InvalidName",
                    "Invalid Name: '%s' (1-80 characters; no whitespace, brackets, wildcards or \"#%%\\^|~`$&,;:/)", name);
    input = input ? input : "{}";
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(input, &end, 1);
    cJSON_Delete(j);
    if (!j)
        return fail(a, "InvalidExecutionInput", "Invalid State Machine Execution Input: not JSON (error near byte %zu of %zu)",
                    end ? (size_t)(end - input) : (size_t)0, strlen(input));
    pthread_mutex_lock(&p->sfn->mu);
    sfn_machine *m = req_machine(p, req, a);
    sfn_exec *e = NULL;
    int rc = m ? start_locked(p, m, name, input, a, &e) : -1;
    cJSON *o = rc ? NULL : cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "executionArn", e->arn);
        cJSON_AddNumberToObject(o, "startDate", e->start);
    }
    pthread_mutex_unlock(&p->sfn->mu);
    return rc ? rc : answer(a, o);
}

/* The execution named by req's executionArn (locked, refreshed). */
static sfn_exec *req_exec(pl_faas *p, const cJSON *req, sfn_answer *a)
{
    const char *arn;
    if (get_arn(req, "executionArn", "execution", 8, &arn, a))
        return NULL;
    sfn_exec *e = find_exec(p->sfn, arn);
    if (!e)
        fail(a, "ExecutionDoesNotExist", "Execution Does Not Exist: '%s'", arn);
    else
        refresh(e);
    return e;
}

static void add_opt(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
}

static int act_describe_exec(pl_faas *p, const cJSON *req, sfn_answer *a)
{
    pthread_mutex_lock(&p->sfn->mu);
    sfn_exec *e = req_exec(p, req, a);
    cJSON *o = e ? cJSON_CreateObject() : NULL;
    if (o) {
        cJSON_AddStringToObject(o, "executionArn", e->arn);
        cJSON_AddStringToObject(o, "stateMachineArn", e->sm->arn);
        cJSON_AddStringToObject(o, "name", e->name);
        cJSON_AddStringToObject(o, "status", e->status);
        cJSON_AddNumberToObject(o, "startDate", e->start);
        if (e->stop > 0)
            cJSON_AddNumberToObject(o, "stopDate", e->stop);
        cJSON_AddStringToObject(o, "input", e->input);
        cJSON_AddBoolToObject(cJSON_AddObjectToObject(o, "inputDetails"), "included", 1);
        add_opt(o, "output", e->output);
        if (e->output)
            cJSON_AddBoolToObject(cJSON_AddObjectToObject(o, "outputDetails"), "included", 1);
        add_opt(o, "error", e->error);
        add_opt(o, "cause", e->cause);
    }
    pthread_mutex_unlock(&p->sfn->mu);
    return e ? answer(a, o) : -1;
}

static int act_stop(pl_faas *p, const cJSON *req, sfn_answer *a)
{
    const char *error, *cause;
    if (get_str(req, "error", 0, 256, &error, a) || get_str(req, "cause", 0, 32768, &cause, a))
        return -1;
    pthread_mutex_lock(&p->sfn->mu);
    sfn_exec *e = req_exec(p, req, a);
    if (e && !strcmp(e->status, "RUNNING"))
        close_exec(e, "ABORTED", error, cause, wall_now());
    cJSON *o = e ? cJSON_CreateObject() : NULL;
    if (o)
        cJSON_AddNumberToObject(o, "stopDate", e->stop);
    pthread_mutex_unlock(&p->sfn->mu);
    return e ? answer(a, o) : -1;
}

static int act_list_execs(pl_faas *p, const cJSON *req, sfn_answer *a)
{
    int max, start;
    const char *filter;
    if (get_max_results(req, &max, &start, a) || get_str(req, "statusFilter", 0, 16, &filter, a))
        return -1;
    pthread_mutex_lock(&p->sfn->mu);
    sfn_machine *m = req_machine(p, req, a);
    cJSON *o = m ? cJSON_CreateObject() : NULL, *arr = o ? cJSON_AddArrayToObject(o, "executions") : NULL;
    int i = 0, more = 0;
    for (sfn_exec *e = m ? p->sfn->execs : NULL; e; e = e->next) {
        refresh(e);
        if (e->sm != m || (filter && strcmp(filter, e->status)) || i++ < start)
            continue;
        if (cJSON_GetArraySize(arr) == max) {
            more = 1;
            break;
        }
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "executionArn", e->arn);
        cJSON_AddStringToObject(it, "stateMachineArn", m->arn);
        cJSON_AddStringToObject(it, "name", e->name);
        cJSON_AddStringToObject(it, "status", e->status);
        cJSON_AddNumberToObject(it, "startDate", e->start);
        if (e->stop > 0)
            cJSON_AddNumberToObject(it, "stopDate", e->stop);
        cJSON_AddItemToArray(arr, it);
    }
    pthread_mutex_unlock(&p->sfn->mu);
    if (!m)
        return -1;
    if (more) {
        char tok[24];
        snprintf(tok, sizeof tok, "%d", start + max);
        cJSON_AddStringToObject(o, "nextToken", tok);
    }
    return answer(a, o);
}

/* "2024-01-01T00:00:00.123Z" to epoch seconds. */
static double iso_to_epoch(const char *s)
{
    struct tm tm;
    int ms = 0;
    memset(&tm, 0, sizeof tm);
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                     &tm.tm_sec, &ms) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) + ms * 1e-3;
}

static cJSON *history_event(int id, double t, const char *type)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddNumberToObject(ev, "id", id);
    cJSON_AddNumberToObject(ev, "previousEventId", id - 1);
    cJSON_AddNumberToObject(ev, "timestamp", t);
    cJSON_AddStringToObject(ev, "type", type);
    return ev;
}

/* The interpreter's events (or ExecutionStarted while it runs), then the
 * platform's own end for stopped and timed-out executions (locked). */
static cJSON *history(const sfn_exec *e)
{
    char *text = NULL;
    pl_err err = {0, ""};
    cJSON *events = NULL;
    if (e->result && pl_asl_execution_history(e->result, &text, &err) == PL_OK) {
        cJSON *root = cJSON_Parse(text);
        events = cJSON_DetachItemFromObject(root, "events");
        cJSON_Delete(root);
    }
    free(text);
    cJSON *out = cJSON_CreateArray(), *ev;
    int id = 0;
    cJSON_ArrayForEach(ev, events)
    {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type"));
        const char *ts = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "timestamp"));
        if ((!strcmp(e->status, "ABORTED") || !strcmp(e->status, "TIMED_OUT")) && iso_to_epoch(ts) > e->stop + 1e-3)
            break; /* what the interpreter did after the platform ended the execution */
        cJSON *n = history_event(++id, iso_to_epoch(ts), type ? type : "");
        cJSON *d = cJSON_GetObjectItemCaseSensitive(ev, "details");
        if (d)
            cJSON_AddItemToObject(n, "details", cJSON_Duplicate(d, 1));
        cJSON_AddItemToArray(out, n);
    }
    cJSON_Delete(events);
    if (id == 0) {
        cJSON *n = history_event(++id, e->start, "ExecutionStarted");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(n, "details"), "input", e->input);
        cJSON_AddItemToArray(out, n);
    }
    const char *end = !strcmp(e->status, "ABORTED") ? "ExecutionAborted" : !strcmp(e->status, "TIMED_OUT") ? "ExecutionTimedOut" : NULL;
    if (end) {
        cJSON *n = history_event(++id, e->stop, end), *d = cJSON_AddObjectToObject(n, "details");
        add_opt(d, "error", e->error);
        add_opt(d, "cause", e->cause);
        cJSON_AddItemToArray(out, n);
    }
    return out;
}

static int act_history(pl_faas *p, const cJSON *req, sfn_answer *a)
{
    int max, start;
    if (get_max_results(req, &max, &start, a))
        return -1;
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(req, "reverseOrder");
    if (rev && !cJSON_IsBool(rev))
        return fail(a, "SerializationException", "'reverseOrder' must be a boolean");
    pthread_mutex_lock(&p->sfn->mu);
    sfn_exec *e = req_exec(p, req, a);
    cJSON *all = e ? history(e) : NULL;
    pthread_mutex_unlock(&p->sfn->mu);
    if (!e)
        return -1;
    int n = cJSON_GetArraySize(all);
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "events");
    for (int i = start; i < n && i < start + max; i++)
        cJSON_AddItemToArray(arr, cJSON_Duplicate(cJSON_GetArrayItem(all, cJSON_IsTrue(rev) ? n - 1 - i : i), 1));
    if (start + max < n) {
        char tok[24];
        snprintf(tok, sizeof tok, "%d", start + max);
        cJSON_AddStringToObject(o, "nextToken", tok);
    }
    cJSON_Delete(all);
    return answer(a, o);
}

typedef int (*sfn_action)(pl_faas *p, const cJSON *req, sfn_answer *a);

static const struct {
    const char *name;
    sfn_action fn;
} ACTIONS[] = {
    {"CreateStateMachine", act_create},   {"DescribeStateMachine", act_describe_machine},
    {"ListStateMachines", act_list_machines}, {"DeleteStateMachine", act_delete_machine},
    {"StartExecution", act_start},        {"DescribeExecution", act_describe_exec},
    {"StopExecution", act_stop},          {"ListExecutions", act_list_execs},
    {"GetExecutionHistory", act_history},
};

/* ---- HTTP ---------------------------------------------------------------- */

static int reply(struct MHD_Connection *c, pl_faas *p, const sfn_answer *a)
{
    char *err_body = NULL;
    if (a->status != 200) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "__type", a->type);
        cJSON_AddStringToObject(o, "message", a->msg);
        err_body = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }
    const char *body = a->status == 200 ? a->body : err_body;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(body ? strlen(body) : 0, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    free(err_body);
    if (!r)
        return MHD_NO;
    char id[40];
    pthread_mutex_lock(&p->mu);
    faas_new_request_id(p, id);
    pthread_mutex_unlock(&p->mu);
    MHD_add_response_header(r, "Content-Type", "application/x-amz-json-1.0");
    MHD_add_response_header(r, "x-amzn-RequestId", id);
    if (a->status != 200)
        MHD_add_response_header(r, "x-amzn-ErrorType", a->type);
    enum MHD_Result rc = MHD_queue_response(c, a->status, r);
    MHD_destroy_response(r);
    return rc;
}

static int route(pl_faas *p, struct MHD_Connection *c, const char *method, const faas_req *r, sfn_answer *a)
{
    const char *target = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Target");
    if (strcmp(method, "POST"))
        return fail(a, "UnknownOperationException",
                    "%s / is not an operation: Step Functions takes POST / with X-Amz-Target: " TARGET_PREFIX "ACTION",
                    method);
    faas_auth_error ae; /* as AWS: who is asking before what is asked */
    if (faas_auth_check(p, c, method, "/", r, "states", &ae)) {
        fail(a, ae.type, "%s", ae.msg);
        a->status = ae.status;
        return -1;
    }
    if (!target)
        return fail(a, "UnknownOperationException",
                    "POST / without an X-Amz-Target header (expected " TARGET_PREFIX "ACTION)");
    sfn_action fn = NULL;
    size_t pl = strlen(TARGET_PREFIX);
    for (size_t i = 0; !strncmp(target, TARGET_PREFIX, pl) && i < sizeof ACTIONS / sizeof ACTIONS[0]; i++)
        if (!strcmp(target + pl, ACTIONS[i].name))
            fn = ACTIONS[i].fn;
    if (!fn)
        return fail(a, "UnknownOperationException",
                    "X-Amz-Target '%.100s': unknown operation (the local platform serves " TARGET_PREFIX
                    "CreateStateMachine, DescribeStateMachine, ListStateMachines, DeleteStateMachine, StartExecution, "
                    "DescribeExecution, StopExecution, ListExecutions, GetExecutionHistory)",
                    target);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (!ct || strncmp(ct, "application/x-amz-json-1.0", 26))
        return fail(a, "SerializationException", "Content-Type '%s': expected application/x-amz-json-1.0",
                    ct ? ct : "(none)");
    if (r->too_big)
        return fail(a, "ValidationException", "request body larger than %u bytes", FAAS_MAX_BODY);
    const char *end = NULL;
    cJSON *req = r->len ? cJSON_ParseWithLengthOpts(r->buf, r->len, &end, 0) : cJSON_CreateObject();
    if (!cJSON_IsObject(req) || (r->len && (size_t)(end - r->buf) != r->len)) {
        cJSON_Delete(req);
        return fail(a, "SerializationException", "the request body is not a JSON object (error near byte %zu of %zu)",
                    end ? (size_t)(end - r->buf) : (size_t)0, r->len);
    }
    int rc = fn(p, req, a);
    cJSON_Delete(req);
    return rc;
}

int faas_sfn_route(pl_faas *p, struct MHD_Connection *c, const char *method, faas_req *r)
{
    sfn_answer a;
    memset(&a, 0, sizeof a);
    route(p, c, method, r, &a);
    int rc = reply(c, p, &a);
    free(a.body);
    return rc;
}

int pl_faas_create_state_machine(pl_faas *p, const char *name, const char *definition, const char *role_arn,
                                 char *arn, size_t cap, pl_err *err)
{
    sfn_answer a;
    memset(&a, 0, sizeof a);
    sfn_machine *m = NULL;
    pthread_mutex_lock(&p->sfn->mu);
    int rc = create_machine(p, name ? name : "", definition ? definition : "",
                            role_arn ? role_arn : "arn:aws:iam::" ACCOUNT ":role/peerless-local", &a, &m);
    if (!rc)
        snprintf(arn, cap, "%s", m->arn);
    pthread_mutex_unlock(&p->sfn->mu);
    if (rc)
        return pl_err_set(err, a.type[0] == 'S' && !strcmp(a.type, "ServiceException") ? PL_ERR_NOMEM : PL_ERR_ARG,
                          "state machine '%s': %s: %s", name ? name : "", a.type, a.msg);
    return PL_OK;
}
