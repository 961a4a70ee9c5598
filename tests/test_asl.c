/* test_asl.c — Amazon States Language: the generated gradient machine run
 * with a fake invoker (order, MaxConcurrency, Retry), Catch, Choice / Pass /
 * Parallel / Fail / Succeed, the input/output processing examples of the
 * AWS documentation, TimeoutSeconds, and ~25 broken definitions that must be
 * rejected with a precise message. Expected values are written from the
 * spec and the fake invoker's rules, never taken from our own output. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "peerless/asl.h"
#include "test.h"

/* ---- a fake function platform ---- */

typedef struct fake {
    pthread_mutex_t mu;
    int active, max_active, calls;
    int fail_first[64];  /* per batch index: failures still to inject */
    int successes[64];   /* per batch index */
    int sleep_ms;
} fake;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *process_input(const cJSON *in)
{
    const cJSON *n = cJSON_GetObjectItem(cJSON_GetObjectItem(in, "input"), "n");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "run", "r1");
    cJSON_AddNumberToObject(o, "step", 7);
    cJSON_AddNumberToObject(o, "rank", 2);
    cJSON_AddNumberToObject(o, "model_version", 5);
    cJSON_AddStringToObject(o, "model_key", "r1/model-5");
    cJSON_AddStringToObject(o, "model", "lenet5");
    cJSON_AddNumberToObject(o, "num_classes", 10);
    cJSON_AddStringToObject(o, "dataset", "synthetic");
    cJSON_AddNumberToObject(o, "input_size", 0);
    cJSON_AddStringToObject(o, "loss", "cross_entropy");
    cJSON_AddNumberToObject(o, "seed", 42);
    cJSON_AddStringToObject(o, "store", "file:///tmp/store");
    cJSON *b = cJSON_AddArrayToObject(o, "batches");
    for (int i = 0; i < (n ? n->valueint : 0); i++) {
        char key[32], out[32];
        snprintf(key, sizeof key, "r1/batch-%d", i);
        snprintf(out, sizeof out, "r1/grad-%d", i);
        cJSON *it = cJSON_CreateObject();
        cJSON_AddNumberToObject(it, "batch", i);
        cJSON_AddStringToObject(it, "batch_key", key);
        cJSON_AddStringToObject(it, "out_key", out);
        cJSON_AddItemToArray(b, it);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* compute_gradient: {"gradient": "<batch_key>@<version>#<batch>", "samples": 10+batch, "loss": batch/2}.
 * The event must carry the flat fields of docs/serverless.md. */
static int compute(fake *f, const cJSON *in, char **out, char **error)
{
    int idx = cJSON_GetObjectItem(in, "batch")->valueint;
    const char *batch = cJSON_GetObjectItem(in, "batch_key")->valuestring;
    const char *need[] = {"run", "step", "rank", "model_key", "model", "num_classes", "dataset", "input_size",
                          "loss", "seed", "store", "out_key"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        PL_CHECK(cJSON_GetObjectItem(in, need[i]) != NULL, "compute_gradient event lacks '%s'", need[i]);
    int version = cJSON_GetObjectItem(in, "model_version")->valueint;
    pthread_mutex_lock(&f->mu);
    int active = ++f->active;
    if (active > f->max_active)
        f->max_active = active;
    int inject = f->fail_first[idx] > 0 ? f->fail_first[idx]-- : 0;
    pthread_mutex_unlock(&f->mu);
    sleep_ms(f->sleep_ms);
    pthread_mutex_lock(&f->mu);
    f->active--;
    if (!inject)
        f->successes[idx]++;
    pthread_mutex_unlock(&f->mu);
    if (inject) {
        *error = strdup("Lambda.ServiceException");
        return 1;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "{\"gradient\":\"%s@%d#%d\",\"samples\":%d,\"loss\":%g}", batch, version, idx, 10 + idx,
             idx / 2.0);
    *out = strdup(buf);
    return 0;
}

static int fake_invoke(void *ctx, const char *resource, const char *input, char **out, char **error, char **cause)
{
    fake *f = ctx;
    (void)cause;
    pthread_mutex_lock(&f->mu);
    f->calls++;
    pthread_mutex_unlock(&f->mu);
    cJSON *in = cJSON_Parse(input);
    const cJSON *action = cJSON_GetObjectItem(in, "action");
    int rc = 0;
    if (strstr(resource, "process") || (cJSON_IsString(action) && !strcmp(action->valuestring, "process_input")))
        *out = process_input(in);
    else
        rc = compute(f, in, out, error);
    cJSON_Delete(in);
    return rc;
}

/* ---- helpers ---- */

static pl_asl_machine *parse(const char *json)
{
    pl_err err = {0, ""};
    pl_asl_machine *m = NULL;
    int st = pl_asl_parse(json, strlen(json), &m, &err);
    PL_CHECK(st == PL_OK, "parse failed: %s", err.msg);
    return m;
}

static pl_asl_execution *run(const pl_asl_machine *m, const char *input, pl_asl_invoke_fn fn, void *ctx)
{
    pl_asl_options o = {fn, ctx, 0.001, 0, NULL};
    pl_err err = {0, ""};
    pl_asl_execution *e = NULL;
    int st = m ? pl_asl_execute(m, input, &o, &e, &err) : PL_ERR_ARG;
    PL_CHECK(st == PL_OK, "execute failed: %s", err.msg);
    return e;
}

/* JSON equality of the execution output with `want`. */
static void check_output(const pl_asl_execution *e, const char *want, const char *what)
{
    if (!e)
        return;
    PL_CHECK(pl_asl_execution_status(e) == PL_ASL_SUCCEEDED, "%s: failed with %s: %s", what,
             pl_asl_execution_error(e), pl_asl_execution_cause(e) ? pl_asl_execution_cause(e) : "");
    cJSON *got = pl_asl_execution_output(e) ? cJSON_Parse(pl_asl_execution_output(e)) : NULL;
    cJSON *exp = cJSON_Parse(want);
    PL_CHECK(exp && got && cJSON_Compare(got, exp, 1), "%s: output %s, want %s", what,
             pl_asl_execution_output(e) ? pl_asl_execution_output(e) : "(none)", want);
    cJSON_Delete(got);
    cJSON_Delete(exp);
}

static void check_failed(const pl_asl_execution *e, const char *error, const char *what)
{
    if (!e)
        return;
    PL_CHECK(pl_asl_execution_status(e) == PL_ASL_FAILED, "%s: expected failure", what);
    const char *got = pl_asl_execution_error(e);
    PL_CHECK(got && !strcmp(got, error), "%s: error %s, want %s", what, got ? got : "(none)", error);
}

/* ---- the generated machine ---- */

static char *expected_step_output(int n)
{
    char *buf = malloc(4096 + (size_t)n * 128);
    size_t k = (size_t)sprintf(buf, "{\"run\":\"r1\",\"step\":7,\"rank\":2,\"model_version\":5,\"model_key\":\"r1/model-5\","
                         "\"model\":\"lenet5\",\"num_classes\":10,\"dataset\":\"synthetic\",\"input_size\":0,"
                         "\"loss\":\"cross_entropy\",\"seed\":42,\"store\":\"file:///tmp/store\",\"gradients\":[");
    for (int i = 0; i < n; i++)
        k += (size_t)sprintf(buf + k, "%s\"r1/batch-%d@5#%d\"", i ? "," : "", i, i);
    k += (size_t)sprintf(buf + k, "],\"samples\":[");
    for (int i = 0; i < n; i++)
        k += (size_t)sprintf(buf + k, "%s%d", i ? "," : "", 10 + i);
    k += (size_t)sprintf(buf + k, "],\"losses\":[");
    for (int i = 0; i < n; i++)
        k += (size_t)sprintf(buf + k, "%s%g", i ? "," : "", i / 2.0);
    sprintf(buf + k, "]}");
    return buf;
}

static void test_generated(int n, int fail_once)
{
    pl_asl_gen_config c = {n, "arn:aws:lambda:us-east-1:123456789012:function:peerless", 2, NULL, NULL, 60};
    char *json = NULL;
    pl_err err = {0, ""};
    PL_CHECK(pl_asl_generate(&c, &json, &err) == PL_OK, "generate: %s", err.msg);
    pl_asl_machine *m = json ? parse(json) : NULL;
    fake f = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, {0}, {0}, 5};
    for (int i = 0; i < n; i++)
        f.fail_first[i] = fail_once;
    char input[64];
    snprintf(input, sizeof input, "{\"n\":%d}", n);
    pl_asl_execution *e = run(m, input, fake_invoke, &f);
    char *want = expected_step_output(n);
    char what[64];
    snprintf(what, sizeof what, "generated machine, %d batches%s", n, fail_once ? ", one failure each" : "");
    check_output(e, want, what);
    PL_CHECK(f.max_active <= 2, "%s: %d concurrent invocations with MaxConcurrency 2", what, f.max_active);
    if (n >= 3)
        PL_CHECK(f.max_active == 2, "%s: batches did not run concurrently (max %d)", what, f.max_active);
    for (int i = 0; i < n; i++)
        PL_CHECK(f.successes[i] == 1, "%s: batch %d succeeded %d times", what, i, f.successes[i]);
    if (e) {
        PL_CHECK(pl_asl_execution_count_events(e, "TaskFailed") == n * fail_once, "%s: %d TaskFailed events", what,
                 pl_asl_execution_count_events(e, "TaskFailed"));
        PL_CHECK(pl_asl_execution_count_events(e, "TaskScheduled") == 1 + n * (1 + fail_once),
                 "%s: %d TaskScheduled events", what, pl_asl_execution_count_events(e, "TaskScheduled"));
        PL_CHECK(pl_asl_execution_count_events(e, "MapIterationSucceeded") == n &&
                     pl_asl_execution_count_events(e, "MapStateStarted") == 1,
                 "%s: MapIterationSucceeded / MapStateStarted", what);
        PL_CHECK(pl_asl_execution_count_events(e, "ExecutionSucceeded") == 1, "%s: ExecutionSucceeded", what);
        char *h = NULL;
        PL_CHECK(pl_asl_execution_history(e, &h, &err) == PL_OK, "history: %s", err.msg);
        cJSON *hj = h ? cJSON_Parse(h) : NULL;
        const cJSON *ev = cJSON_GetArrayItem(cJSON_GetObjectItem(hj, "events"), 0);
        PL_CHECK(ev && !strcmp(cJSON_GetObjectItem(ev, "type")->valuestring, "ExecutionStarted") &&
                     cJSON_IsString(cJSON_GetObjectItem(ev, "timestamp")),
                 "%s: history starts with a timestamped ExecutionStarted", what);
        cJSON_Delete(hj);
        free(h);
    }
    free(want);
    pl_asl_execution_destroy(e);
    pl_asl_destroy(m);
    free(json);
}

/* ---- semantics ---- */

static int hello_invoke(void *ctx, const char *resource, const char *input, char **out, char **error, char **cause)
{
    (void)ctx;
    cJSON *in = cJSON_Parse(input);
    const cJSON *who = cJSON_GetObjectItem(in, "who");
    int rc = 0;
    if (strstr(resource, "fail")) {
        *error = strdup("Custom.Error");
        *cause = strdup("boom");
        rc = 1;
    } else if (strstr(resource, "slow")) {
        sleep_ms(300);
        *out = strdup("{}");
    } else {
        char buf[256];
        snprintf(buf, sizeof buf, "\"Hello, %s!\"", cJSON_IsString(who) ? who->valuestring : "?");
        *out = strdup(buf);
    }
    cJSON_Delete(in);
    return rc;
}

static void check_run(const char *def, const char *input, const char *want, const char *what)
{
    pl_asl_machine *m = parse(def);
    pl_asl_execution *e = run(m, input, hello_invoke, NULL);
    check_output(e, want, what);
    pl_asl_execution_destroy(e);
    pl_asl_destroy(m);
}

static void check_fail_run(const char *def, const char *input, const char *error, const char *what)
{
    pl_asl_machine *m = parse(def);
    pl_asl_execution *e = run(m, input, hello_invoke, NULL);
    check_failed(e, error, what);
    pl_asl_execution_destroy(e);
    pl_asl_destroy(m);
}

#define HELLO "arn:aws:lambda:us-east-1:123456789012:function:HelloFunction"

static void test_paths(void)
{
    /* AWS docs, "InputPath, ResultPath and OutputPath Example". */
    check_run("{\"StartAt\":\"HelloWorld\",\"States\":{\"HelloWorld\":{\"Type\":\"Task\",\"Resource\":\"" HELLO "\","
              "\"InputPath\":\"$.lambda\",\"ResultPath\":\"$.data.lambdaresult\",\"OutputPath\":\"$.data\",\"End\":true}}}",
              "{\"comment\":\"An input comment.\",\"data\":{\"val1\":23,\"val2\":17},\"extra\":\"foo\","
              "\"lambda\":{\"who\":\"AWS Step Functions\"}}",
              "{\"val1\":23,\"val2\":17,\"lambdaresult\":\"Hello, AWS Step Functions!\"}", "docs InputPath/ResultPath/OutputPath");
    /* AWS docs, ResultPath: "$" replaces, null discards, "$.taskresult" merges. */
    const char *in = "{\"comment\":\"This is a test\",\"details\":\"Default example\",\"who\":\"Step Functions\"}";
    check_run("{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"" HELLO "\",\"ResultPath\":\"$\",\"End\":true}}}",
              in, "\"Hello, Step Functions!\"", "ResultPath $");
    check_run("{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"" HELLO "\",\"ResultPath\":null,\"End\":true}}}",
              in, in, "ResultPath null");
    check_run("{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"" HELLO "\",\"ResultPath\":\"$.taskresult\",\"End\":true}}}",
              in, "{\"comment\":\"This is a test\",\"details\":\"Default example\",\"who\":\"Step Functions\","
                  "\"taskresult\":\"Hello, Step Functions!\"}", "ResultPath $.taskresult");
    /* Parameters with static and ".$" fields, bracket and index paths, context object. */
    check_run("{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"Parameters\":{\"flagged\":true,"
              "\"parts\":{\"first.$\":\"$.vals[0]\",\"second.$\":\"$['vals'][1]\"},\"id.$\":\"$$.Execution.Id\","
              "\"state.$\":\"$$.State.Name\"},\"End\":true}}}",
              "{\"flagged\":7,\"vals\":[0,10,20,30,40,50]}",
              "{\"flagged\":true,\"parts\":{\"first\":0,\"second\":10},\"id\":\"peerless:execution:local\",\"state\":\"P\"}",
              "Parameters");
    /* ResultSelector, then ResultPath, then OutputPath; Pass Result. */
    check_run("{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Result\":{\"x\":{\"y\":3}},\"ResultPath\":\"$.r\","
              "\"Next\":\"B\"},\"B\":{\"Type\":\"Task\",\"Resource\":\"" HELLO "\",\"Parameters\":{\"who.$\":\"$.name\"},"
              "\"ResultSelector\":{\"greeting.$\":\"$\"},\"ResultPath\":\"$.out\",\"OutputPath\":\"$.out\",\"End\":true}}}",
              "{\"name\":\"peer\"}", "{\"greeting\":\"Hello, peer!\"}", "ResultSelector");
    check_run("{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Result\":{\"x\":{\"y\":3}},\"ResultPath\":\"$.r\","
              "\"End\":true}}}", "{\"name\":\"peer\"}", "{\"name\":\"peer\",\"r\":{\"x\":{\"y\":3}}}", "Pass Result");
    check_run("{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Parameters\":{\"v.$\":\"$.a[*].b\"},\"End\":true}}}",
              "{\"a\":[{\"b\":1},{\"c\":2},{\"b\":3}]}", "{\"v\":[1,3]}", "wildcard path");
    check_fail_run("{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"InputPath\":\"$.missing\",\"End\":true}}}",
                   "{}", "States.Runtime", "InputPath matching nothing");
}

static void test_control(void)
{
    const char *choice =
        "{\"StartAt\":\"C\",\"States\":{\"C\":{\"Type\":\"Choice\",\"Choices\":["
        "{\"Not\":{\"Variable\":\"$.type\",\"StringEquals\":\"Private\"},\"Next\":\"Public\"},"
        "{\"And\":[{\"Variable\":\"$.value\",\"IsPresent\":true},{\"Variable\":\"$.value\",\"NumericGreaterThanEquals\":20},"
        "{\"Variable\":\"$.value\",\"NumericLessThan\":30}],\"Next\":\"ValueInTwenties\"},"
        "{\"Variable\":\"$.flag\",\"BooleanEquals\":true,\"Next\":\"Flagged\"}],\"Default\":\"DefaultState\"},"
        "\"Public\":{\"Type\":\"Pass\",\"Result\":\"public\",\"End\":true},"
        "\"ValueInTwenties\":{\"Type\":\"Pass\",\"Result\":\"twenties\",\"End\":true},"
        "\"Flagged\":{\"Type\":\"Succeed\",\"OutputPath\":\"$.flag\"},"
        "\"DefaultState\":{\"Type\":\"Fail\",\"Error\":\"DefaultStateError\",\"Cause\":\"No Matches!\"}}}";
    check_run(choice, "{\"type\":\"Public\"}", "\"public\"", "Choice Not");
    check_run(choice, "{\"type\":\"Private\",\"value\":25}", "\"twenties\"", "Choice And");
    check_run(choice, "{\"type\":\"Private\",\"value\":35,\"flag\":true}", "true", "Choice Boolean + Succeed");
    check_fail_run(choice, "{\"type\":\"Private\",\"value\":35}", "DefaultStateError", "Choice Default -> Fail");
    check_fail_run("{\"StartAt\":\"C\",\"States\":{\"C\":{\"Type\":\"Choice\",\"Choices\":[{\"Variable\":\"$.a\","
                   "\"StringMatches\":\"log-*.txt\",\"Next\":\"D\"}]},\"D\":{\"Type\":\"Succeed\"}}}",
                   "{\"a\":\"x.txt\"}", "States.NoChoiceMatched", "no choice matched");
    check_run("{\"StartAt\":\"C\",\"States\":{\"C\":{\"Type\":\"Choice\",\"Choices\":[{\"Variable\":\"$.a\","
              "\"StringMatches\":\"log-*.txt\",\"Next\":\"D\"}]},\"D\":{\"Type\":\"Succeed\"}}}",
              "{\"a\":\"log-3.txt\"}", "{\"a\":\"log-3.txt\"}", "StringMatches");
    check_run("{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Parallel\",\"Branches\":["
              "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Wait\",\"Seconds\":1,\"Next\":\"A2\"},"
              "\"A2\":{\"Type\":\"Pass\",\"Result\":\"first\",\"End\":true}}},"
              "{\"StartAt\":\"B\",\"States\":{\"B\":{\"Type\":\"Task\",\"Resource\":\"" HELLO "\",\"End\":true}}}],"
              "\"ResultPath\":\"$.both\",\"End\":true}}}",
              "{\"who\":\"x\"}", "{\"who\":\"x\",\"both\":[\"first\",\"Hello, x!\"]}", "Parallel order");
    /* Catch routes to a fallback with the error at ResultPath (spec example shape). */
    check_run("{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"arn:fail\","
              "\"Retry\":[{\"ErrorEquals\":[\"Other.Error\"],\"MaxAttempts\":5}],"
              "\"Catch\":[{\"ErrorEquals\":[\"Custom.Error\"],\"ResultPath\":\"$.error-info\",\"Next\":\"Fallback\"}],"
              "\"End\":true},\"Fallback\":{\"Type\":\"Pass\",\"End\":true}}}",
              "{\"a\":1}", "{\"a\":1,\"error-info\":{\"Error\":\"Custom.Error\",\"Cause\":\"boom\"}}", "Catch");
    check_fail_run("{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"arn:fail\","
                   "\"Retry\":[{\"ErrorEquals\":[\"States.ALL\"],\"MaxAttempts\":2,\"IntervalSeconds\":1}],\"End\":true}}}",
                   "{}", "Custom.Error", "Retry exhausted");
    /* TimeoutSeconds 1 at time_scale 0.001 = 1 ms; the function takes 300 ms. */
    check_fail_run("{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"arn:slow\",\"TimeoutSeconds\":1,"
                   "\"End\":true}}}", "{}", "States.Timeout", "TimeoutSeconds");
    check_run("{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"arn:slow\",\"TimeoutSeconds\":1,"
              "\"Catch\":[{\"ErrorEquals\":[\"States.Timeout\"],\"Next\":\"F\"}],\"End\":true},"
              "\"F\":{\"Type\":\"Pass\",\"Result\":\"timed out\",\"End\":true}}}", "{}", "\"timed out\"", "Catch Timeout");
    check_fail_run("{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"arn:slow\",\"TimeoutSeconds\":1,"
                   "\"Catch\":[{\"ErrorEquals\":[\"States.TaskFailed\"],\"Next\":\"F\"}],\"End\":true},"
                   "\"F\":{\"Type\":\"Pass\",\"End\":true}}}", "{}", "States.Timeout", "TaskFailed does not match Timeout");
}

/* ---- invalid definitions ---- */

static void test_invalid(void)
{
    static const struct { const char *def, *phrase; } bad[] = {
        {"{\"StartAt\":", "not valid JSON"},
        {"[1,2]", "must be a JSON object"},
        {"{\"States\":{\"A\":{\"Type\":\"Succeed\"}}}", "missing StartAt"},
        {"{\"StartAt\":\"B\",\"States\":{\"A\":{\"Type\":\"Succeed\"}}}", "StartAt 'B' is not a state"},
        {"{\"StartAt\":\"A\",\"States\":{}}", "States must be a non-empty object"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"End\":true}}}", "state 'A': missing Type"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Lambda\",\"End\":true}}}", "state 'A': unknown Type 'Lambda'"},
        {"{\"StartAt\":\"Aggregate\",\"States\":{\"Aggregate\":{\"Type\":\"Pass\",\"Next\":\"Agregate\"}}}",
         "state 'Aggregate': Next 'Agregate' is not a state"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\"}}}", "state 'A': needs Next or \"End\": true"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Next\":\"A\",\"End\":true}}}", "has both Next and End"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Task\",\"End\":true}}}", "state 'A': Task needs a Resource"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Task\",\"Resouce\":\"x\",\"End\":true}}}", "unknown field 'Resouce'"},
        {"{\"StartAt\":\"ComputeGradients\",\"States\":{\"ComputeGradients\":{\"Type\":\"Map\",\"End\":true}}}",
         "Map 'ComputeGradients': ItemProcessor missing"},
        {"{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemProcessor\":{\"States\":{\"X\":{\"Type\":\"Succeed\"}}},"
         "\"End\":true}}}", "Map 'M' ItemProcessor: missing StartAt"},
        {"{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"ItemProcessor\":{\"StartAt\":\"X\",\"States\":{\"X\":"
         "{\"Type\":\"Pass\",\"Next\":\"M\"}}},\"End\":true}}}", "ItemProcessor: state 'X': Next 'M' is not a state"},
        {"{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Parallel\",\"Branches\":[],\"End\":true}}}",
         "state 'P': Parallel needs a non-empty Branches array"},
        {"{\"StartAt\":\"C\",\"States\":{\"C\":{\"Type\":\"Choice\",\"Choices\":[]}}}", "Choice needs a non-empty Choices"},
        {"{\"StartAt\":\"C\",\"States\":{\"C\":{\"Type\":\"Choice\",\"Choices\":[{\"Variable\":\"$.a\",\"StringEquals\":\"x\"}],"
         "\"Default\":\"C\"}}}", "choice rule without a Next"},
        {"{\"StartAt\":\"C\",\"States\":{\"C\":{\"Type\":\"Choice\",\"Choices\":[{\"Variable\":\"$.a\",\"StringEqual\":\"x\","
         "\"Next\":\"C\"}]}}}", "unknown field 'StringEqual' in choice rule"},
        {"{\"StartAt\":\"C\",\"States\":{\"C\":{\"Type\":\"Choice\",\"Choices\":[{\"Variable\":\"a.b\",\"StringEquals\":\"x\","
         "\"Next\":\"C\"}]}}}", "Choices[0]: Variable: path 'a.b' must start with '$'"},
        {"{\"StartAt\":\"C\",\"States\":{\"C\":{\"Type\":\"Choice\",\"Choices\":[{\"Variable\":\"$.a\",\"NumericEquals\":\"3\","
         "\"Next\":\"C\"}]}}}", "NumericEquals has a value of the wrong type"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Task\",\"Resource\":\"x\",\"Retry\":[{\"ErrorEquals\":[\"States.ALL\"],"
         "\"MaxAttempts\":-1}],\"End\":true}}}", "state 'A': Retry MaxAttempts must be a non-negative integer"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Task\",\"Resource\":\"x\",\"Retry\":[{\"ErrorEquals\":[\"States.ALL\"],"
         "\"BackoffRate\":0.5}],\"End\":true}}}", "BackoffRate must be a number >= 1.0"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Task\",\"Resource\":\"x\",\"Retry\":[{\"ErrorEquals\":[\"States.ALL\"]},"
         "{\"ErrorEquals\":[\"X\"]}],\"End\":true}}}", "States.ALL must appear alone and in the last Retry"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Task\",\"Resource\":\"x\",\"Catch\":[{\"ErrorEquals\":[\"X\"]}],"
         "\"End\":true}}}", "Catch needs a Next"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"InputPath\":\"$.a[\",\"End\":true}}}",
         "state 'A': InputPath: path '$.a[': syntax error"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"ResultPath\":\"$.a[*]\",\"End\":true}}}",
         "must be a reference path"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"Parameters\":{\"x.$\":\"nope\"},\"End\":true}}}",
         "state 'A': Parameters: field 'x.$'"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Task\",\"Resource\":\"x\",\"TimeoutSeconds\":0,\"End\":true}}}",
         "TimeoutSeconds must be a positive integer"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Succeed\"},\"B\":{\"Type\":\"Succeed\"}}}",
         "state 'B': is not reachable from StartAt"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Fail\",\"Next\":\"A\"}}}", "field 'Next' is not allowed in a Fail state"},
        {"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Wait\",\"End\":true}}}", "Wait needs exactly one of Seconds or SecondsPath"},
        {"{\"StartAt\":\"M\",\"States\":{\"M\":{\"Type\":\"Map\",\"MaxConcurrency\":-2,\"ItemProcessor\":{\"StartAt\":\"X\","
         "\"States\":{\"X\":{\"Type\":\"Succeed\"}}},\"End\":true}}}", "MaxConcurrency must be a non-negative integer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pl_err err = {0, ""};
        pl_asl_machine *m = NULL;
        int st = pl_asl_parse(bad[i].def, strlen(bad[i].def), &m, &err);
        PL_CHECK(st < 0 && m == NULL, "bad definition %zu accepted: %s", i, bad[i].def);
        PL_CHECK(strstr(err.msg, bad[i].phrase) != NULL, "bad definition %zu: message '%s' lacks '%s'", i, err.msg,
                 bad[i].phrase);
        pl_asl_destroy(m);
    }
}

int main(void)
{
    int sizes[3] = {1, 3, 8};
    for (int i = 0; i < 3; i++)
        test_generated(sizes[i], 0);
    test_generated(3, 1);
    test_paths();
    test_control();
    test_invalid();
    PL_TEST_MAIN();
}
