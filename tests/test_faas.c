/* test_faas.c — the local Lambda-compatible platform end to end: Runtime API
 * loop, cold/warm, scale to zero, concurrency/throttling, timeout and memory
 * kills, crashes, init errors, API errors and the REPORT log; the Step
 * Functions API (state machines, executions and their ends, history, error
 * shapes) and SigV4 checks, driven through the AWS clients of aws.h. The
 * function is this binary started as `test_faas runtime`
 * (tests/faas_runtime.c). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "faas_runtime.c"
#include "peerless/aws.h"
#include "peerless/faas.h"
#include "test.h"

static pl_faas *P;
static char BASE[64];

typedef struct call {
    const char *fn, *payload, *type;
    int retries;
    pl_faas_result res;
    int rc;
} call;

static void do_call(call *c)
{
    pl_faas_invoke_opts o = {c->type, 20000, c->retries};
    c->rc = pl_faas_invoke_ex(BASE, c->fn, c->payload, strlen(c->payload), &o, &c->res, NULL);
}

static void *call_thread(void *arg)
{
    do_call(arg);
    return NULL;
}

/* Invoke and parse the body; caller frees the JSON. */
static cJSON *invoke_json(const char *fn, const char *payload, pl_faas_result *res)
{
    call c = {fn, payload, NULL, -1, {0}, 0};
    do_call(&c);
    *res = c.res;
    PL_CHECK(c.rc == PL_OK && c.res.http_status == 200, "%s %s: rc %d http %ld", fn, payload, c.rc,
             c.res.http_status);
    return cJSON_Parse(c.res.body ? c.res.body : "");
}

static const char *jstr(const cJSON *o, const char *k)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
    return s ? s : "";
}

static int jpid(const cJSON *o)
{
    return (int)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "pid"));
}

static int last_report(pl_faas_report *r)
{
    size_t n = pl_faas_report_count(P);
    return n && pl_faas_reports(P, n - 1, r, 1) == 1;
}

static int gone(pid_t pid)
{
    return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

static int test_roundtrip_cold_warm(void)
{
    pl_faas_result r1, r2;
    cJSON *a = invoke_json("echo", "{\"op\":\"echo\",\"x\":41}", &r1);
    pl_faas_report rep;
    PL_CHECK(last_report(&rep) && rep.cold && rep.init_ms > 0, "first call is a cold start");
    PL_CHECK(!strcmp(jstr(a, "request_id"), rep.request_id), "request id round trip: %s vs %s",
             jstr(a, "request_id"), rep.request_id);
    PL_CHECK(atoll(jstr(a, "deadline_ms")) > (long long)time(NULL) * 1000, "deadline header %s",
             jstr(a, "deadline_ms"));
    PL_CHECK(strstr(jstr(a, "arn"), "arn:aws:lambda:us-east-1:") && strstr(jstr(a, "arn"), ":function:echo"),
             "arn %s", jstr(a, "arn"));
    PL_CHECK(!strncmp(jstr(a, "trace"), "Root=1-", 7), "trace %s", jstr(a, "trace"));
    const cJSON *env = cJSON_GetObjectItem(a, "env");
    PL_CHECK(!strcmp(jstr(env, "AWS_LAMBDA_FUNCTION_NAME"), "echo") &&
                 !strcmp(jstr(env, "AWS_LAMBDA_FUNCTION_VERSION"), "$LATEST") &&
                 !strcmp(jstr(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "128") &&
                 !strcmp(jstr(env, "AWS_LAMBDA_LOG_GROUP_NAME"), "/aws/lambda/echo") &&
                 !strcmp(jstr(env, "AWS_REGION"), "us-east-1") && *jstr(env, "AWS_LAMBDA_LOG_STREAM_NAME") &&
                 *jstr(env, "_HANDLER") && *jstr(env, "LAMBDA_TASK_ROOT"),
             "environment variables: %s", r1.body);
    PL_CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "event"), "x")) == 41, "event echoed");
    PL_CHECK(!r1.function_error, "no function error");
    cJSON *b = invoke_json("echo", "{}", &r2);
    PL_CHECK(jpid(a) > 0 && jpid(a) == jpid(b), "warm reuse: pid %d then %d", jpid(a), jpid(b));
    PL_CHECK(last_report(&rep) && !rep.cold && rep.init_ms == 0, "second call is warm");
    PL_CHECK(strcmp(jstr(a, "request_id"), jstr(b, "request_id")), "fresh request ids");
    int pid = jpid(a);
    cJSON_Delete(a);
    cJSON_Delete(b);
    pl_faas_result_free(&r1);
    pl_faas_result_free(&r2);
    return pid;
}

static void test_scale_to_zero(int old_pid)
{
    usleep(900 * 1000); /* idle timeout 0.5 s */
    pid_t pids[4];
    PL_CHECK(pl_faas_env_pids(P, "echo", pids, 4) == 0, "no environment left after the idle timeout");
    PL_CHECK(gone(old_pid), "idle process %d is gone", old_pid);
    pl_faas_result r;
    cJSON *a = invoke_json("echo", "{}", &r);
    pl_faas_report rep;
    PL_CHECK(last_report(&rep) && rep.cold, "call after scale-to-zero is cold");
    PL_CHECK(jpid(a) != old_pid, "new process");
    cJSON_Delete(a);
    pl_faas_result_free(&r);
}

static void test_concurrency(void)
{
    call c[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        c[i] = (call){"echo", "{\"op\":\"sleep\",\"ms\":700}", NULL, -1, {0}, 0};
        pthread_create(&t[i], NULL, call_thread, &c[i]);
        usleep(50 * 1000);
    }
    pid_t pids[4];
    int live = pl_faas_env_pids(P, "echo", pids, 4);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    int ok = 0, throttled = 0, pid[3] = {0};
    for (int i = 0; i < 3; i++) {
        if (c[i].res.http_status == 200) {
            cJSON *j = cJSON_Parse(c[i].res.body);
            pid[ok++] = jpid(j);
            cJSON_Delete(j);
        }
        throttled += c[i].res.http_status == 429 && c[i].res.error_type &&
                     !strcmp(c[i].res.error_type, "TooManyRequestsException") &&
                     strstr(c[i].res.body, "Rate Exceeded");
        pl_faas_result_free(&c[i].res);
    }
    PL_CHECK(ok == 2 && throttled == 1, "concurrency 2 with 3 calls: %d ok, %d throttled", ok, throttled);
    PL_CHECK(live == 2, "2 processes while busy, got %d", live);
    PL_CHECK(pid[0] != pid[1], "two distinct processes");
    /* The client retries throttled calls with backoff. */
    for (int i = 0; i < 2; i++) {
        c[i] = (call){"echo", "{\"op\":\"sleep\",\"ms\":300}", NULL, -1, {0}, 0};
        pthread_create(&t[i], NULL, call_thread, &c[i]);
    }
    usleep(100 * 1000);
    call r = {"echo", "{}", NULL, 0, {0}, 0};
    do_call(&r);
    PL_CHECK(r.rc == PL_OK && r.res.http_status == 200 && r.res.retries > 0, "retried after 429: http %ld, %d retries",
             r.res.http_status, r.res.retries);
    pl_faas_result_free(&r.res);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        pl_faas_result_free(&c[i].res);
    }
}

/* A failed invocation: function error set and errorType as expected. */
static void expect_fn_error(const char *fn, const char *payload, const char *type, const char *msg_part)
{
    pl_faas_result r;
    cJSON *j = invoke_json(fn, payload, &r);
    PL_CHECK(r.function_error && !strcmp(r.function_error, "Unhandled"), "%s %s: X-Amz-Function-Error", fn, payload);
    PL_CHECK(!strcmp(jstr(j, "errorType"), type), "%s %s: errorType %s, want %s", fn, payload, jstr(j, "errorType"),
             type);
    PL_CHECK(!msg_part || strstr(jstr(j, "errorMessage"), msg_part), "%s: errorMessage '%s' lacks '%s'", fn,
             jstr(j, "errorMessage"), msg_part);
    cJSON_Delete(j);
    pl_faas_result_free(&r);
}

static void test_failures(void)
{
    pl_faas_report rep;
    expect_fn_error("slow", "{\"op\":\"sleep\",\"ms\":5000}", "Sandbox.Timedout", "Task timed out after 0.30 seconds");
    PL_CHECK(last_report(&rep) && !strcmp(rep.outcome, "Sandbox.Timedout"), "timeout report");
    PL_CHECK(rep.duration_ms >= 290 && rep.duration_ms < 1500, "timed out after %.1f ms", rep.duration_ms);
    PL_CHECK(gone(rep.pid), "timed-out process %d killed and reaped", (int)rep.pid);

    const char *want = !strcmp(pl_faas_memory_mode_name(P), "cgroup-v1") ? "Runtime.OutOfMemory" : "Runtime.ExitError";
    expect_fn_error("mem", "{\"op\":\"alloc\",\"mb\":400}", want, NULL);
    PL_CHECK(last_report(&rep) && gone(rep.pid), "memory-killed process gone");
    pl_faas_result r;
    cJSON *j = invoke_json("mem", "{\"op\":\"alloc\",\"mb\":8}", &r);
    PL_CHECK(jpid(j) > 0 && !r.function_error, "memory function recovers");
    PL_CHECK(last_report(&rep) && rep.cold && rep.max_memory_used_mb >= 8 && rep.max_memory_used_mb <= 96,
             "max memory used %.1f MB for an 8 MB allocation", rep.max_memory_used_mb);
    cJSON_Delete(j);
    pl_faas_result_free(&r);

    expect_fn_error("echo", "{\"op\":\"crash\"}", "Runtime.ExitError", "exit status 7");
    PL_CHECK(last_report(&rep) && gone(rep.pid), "crashed process reaped");
    j = invoke_json("echo", "{}", &r);
    PL_CHECK(jpid(j) > 0 && jpid(j) != rep.pid && !r.function_error, "recovered after a crash");
    cJSON_Delete(j);
    pl_faas_result_free(&r);

    expect_fn_error("echo", "{\"op\":\"error\"}", "TestError", "asked to fail");
    expect_fn_error("bad", "{}", "Runtime.TestInit", "init failed on purpose");
}

static long raw(const char *method, const char *url, const char *body, const char *hdr, char **out)
{
    CURL *h = curl_easy_init();
    rt_msg m;
    memset(&m, 0, sizeof m);
    struct curl_slist *hd = hdr ? curl_slist_append(NULL, hdr) : NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rt_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    long code = -1;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    *out = m.body ? m.body : strdup("");
    return code;
}

static void expect_raw(const char *method, const char *url, const char *body, const char *hdr, long want,
                       const char *body_part)
{
    char *out;
    long code = raw(method, url, body, hdr, &out);
    PL_CHECK(code == want && strstr(out, body_part), "%s %s: HTTP %ld '%s', want %ld with '%s'", method, url, code, out,
             want, body_part);
    free(out);
}

static void test_api_errors(void)
{
    char url[256], *resp = NULL, *ferr = NULL;
    size_t len;
    pl_err err = {0};
    int rc = pl_faas_invoke(BASE, "nosuch", "{}", 2, &resp, &len, &ferr, 5000, &err);
    PL_CHECK(rc == PL_ERR_NOTFOUND && strstr(err.msg, "Function not found") && strstr(err.msg, "nosuch"),
             "unknown function: %d %s", rc, err.msg);
    snprintf(url, sizeof url, "%s/2015-03-31/functions/echo/invocations", BASE);
    expect_raw("POST", url, "{\"a\":", NULL, 400, "Could not parse request body into json");
    expect_raw("GET", url, NULL, NULL, 405, "Invoke takes POST");
    expect_raw("POST", url, "{}", "X-Amz-Invocation-Type: Sometimes", 400, "expected RequestResponse");
    expect_raw("POST", url, "{}", "X-Amz-Invocation-Type: DryRun", 204, "");
    expect_raw("POST", url, "{\"op\":\"echo\"}", "X-Amz-Invocation-Type: Event", 202, "");
    snprintf(url, sizeof url, "%s/2015-03-31/functions/echo/invocations?Qualifier=7", BASE);
    expect_raw("POST", url, "{}", NULL, 404, "Function not found");
    snprintf(url, sizeof url, "%s/no/such/path", BASE);
    expect_raw("POST", url, "{}", NULL, 404, "Unknown operation");
    /* The Runtime API of a live environment rejects bad requests too. */
    pl_faas_result r;
    cJSON *j = invoke_json("echo", "{}", &r);
    const char *api = jstr(cJSON_GetObjectItem(j, "env"), "AWS_LAMBDA_RUNTIME_API");
    PL_CHECK(!strncmp(api, "127.0.0.1:", 10), "runtime api %s", api);
    snprintf(url, sizeof url, "http://%s/2018-06-01/runtime/invocation/bogus-id/response", api);
    expect_raw("POST", url, "{}", NULL, 400, "InvalidRequestID");
    snprintf(url, sizeof url, "http://%s/2018-06-01/runtime/invocation/next", api);
    expect_raw("POST", url, "{}", NULL, 405, "use GET");
    snprintf(url, sizeof url, "http://%s/2018-06-01/elsewhere", api);
    expect_raw("GET", url, NULL, NULL, 404, "unknown Runtime API path");
    cJSON_Delete(j);
    pl_faas_result_free(&r);
}

static void test_report_log(const char *path)
{
    FILE *f = fopen(path, "r");
    PL_CHECK(f != NULL, "log %s exists", path);
    if (!f)
        return;
    char line[2048];
    size_t n = 0, bad = 0, cold = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        double d = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "duration_ms"));
        double billed = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "billed_duration_ms"));
        double init = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "init_duration_ms"));
        int is_cold = cJSON_IsTrue(cJSON_GetObjectItem(j, "cold_start"));
        int ok = j && strlen(jstr(j, "request_id")) == 36 && *jstr(j, "function") && *jstr(j, "outcome") &&
                 d >= 0 && d < 6000 && billed >= d && billed < d + 1.001 && billed >= 1 &&
                 cJSON_GetNumberValue(cJSON_GetObjectItem(j, "memory_size_mb")) >= 64 &&
                 (is_cold ? init > 0 && init < 5000 : init == 0);
        bad += !ok;
        cold += is_cold;
        if (!ok)
            fprintf(stderr, "bad REPORT line: %s", line);
        cJSON_Delete(j);
        n++;
    }
    fclose(f);
    PL_CHECK(n == pl_faas_report_count(P) && n >= 15, "one log line per invocation: %zu lines, %zu reports", n,
             pl_faas_report_count(P));
    PL_CHECK(bad == 0 && cold >= 6, "%zu malformed REPORT lines, %zu cold starts", bad, cold);
}


/* ---- Step Functions API ------------------------------------------------- */

#define SM_ARN "arn:aws:states:us-east-1:000000000000:stateMachine:"
#define EX_ARN "arn:aws:states:us-east-1:000000000000:execution:"
#define FN_ARN "arn:aws:lambda:us-east-1:000000000000:function:"

/* POST / with X-Amz-Target: AWSStepFunctions.ACTION; returns the HTTP status
 * and the parsed body (caller deletes). content_type NULL = the JSON 1.0 one. */
static long sfn_raw(const char *action, const char *body, const char *content_type, cJSON **out)
{
    CURL *h = curl_easy_init();
    rt_msg m;
    memset(&m, 0, sizeof m);
    char target[128], ct[128], url[128];
    snprintf(target, sizeof target, "X-Amz-Target: AWSStepFunctions.%s", action);
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/x-amz-json-1.0");
    snprintf(url, sizeof url, "%s/", BASE);
    struct curl_slist *hd = curl_slist_append(curl_slist_append(NULL, target), ct);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rt_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    long code = -1;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    *out = cJSON_Parse(m.body ? m.body : "");
    free(m.body);
    return code;
}

/* The call must fail with HTTP 400 (or want), __type `type` and a message
 * containing `part`. */
static void sfn_expect_error(const char *action, const char *body, const char *ct, long want, const char *type,
                             const char *part)
{
    cJSON *j = NULL;
    long code = sfn_raw(action, body, ct, &j);
    PL_CHECK(code == want && !strcmp(jstr(j, "__type"), type) && strstr(jstr(j, "message"), part),
             "%s %s: HTTP %ld %s '%s', want %ld %s with '%s'", action, body, code, jstr(j, "__type"),
             jstr(j, "message"), want, type, part);
    cJSON_Delete(j);
}

/* CreateStateMachine through the API; returns 1 on HTTP 200 with the ARN. */
static int sfn_create(const char *name, const char *definition)
{
    cJSON *req = cJSON_CreateObject(), *j = NULL;
    cJSON_AddStringToObject(req, "name", name);
    cJSON_AddStringToObject(req, "definition", definition);
    cJSON_AddStringToObject(req, "roleArn", "arn:aws:iam::000000000000:role/test");
    char *body = cJSON_PrintUnformatted(req), arn[256];
    long code = sfn_raw("CreateStateMachine", body, NULL, &j);
    snprintf(arn, sizeof arn, SM_ARN "%s", name);
    int ok = code == 200 && !strcmp(jstr(j, "stateMachineArn"), arn) &&
             cJSON_GetNumberValue(cJSON_GetObjectItem(j, "creationDate")) > 1.6e9;
    PL_CHECK(ok, "create %s: HTTP %ld %s", name, code, j ? cJSON_PrintUnformatted(j) : "");
    cJSON_Delete(j);
    cJSON_Delete(req);
    free(body);
    return ok;
}

/* Start with the aws.h client, poll DescribeExecution until it leaves
 * RUNNING (at most 10 s); the final description is in *ex. */
static void sfn_run(const char *machine, const char *name, const char *input, pl_aws_execution *ex, char **arn_out)
{
    pl_aws_opts o = {NULL, BASE, 10000};
    char sm[200], *arn = NULL;
    pl_err err = {0};
    snprintf(sm, sizeof sm, SM_ARN "%s", machine);
    memset(ex, 0, sizeof *ex);
    int st = pl_aws_sfn_start_execution(&o, sm, name, input, &arn, &err);
    PL_CHECK(st == PL_OK && arn, "StartExecution %s: %s", machine, err.msg);
    for (int i = 0; !st && i < 1000; i++) {
        pl_aws_execution_free(ex);
        st = pl_aws_sfn_describe_execution(&o, arn, ex, &err);
        PL_CHECK(st == PL_OK, "DescribeExecution %s: %s", arn, err.msg);
        if (st || strcmp(ex->status, "RUNNING"))
            break;
        usleep(10000);
    }
    if (arn_out)
        *arn_out = arn;
    else
        free(arn);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_sfn_runs(void)
{
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1); /* the clients sign every request */
    setenv("AWS_SECRET_ACCESS_KEY", "test-secret", 1);
    setenv("AWS_REGION", "us-east-1", 1);
    unsetenv("AWS_SESSION_TOKEN");
    /* A Lambda function ARN as Resource, and the lambda:invoke integration. */
    PL_CHECK(sfn_create("direct", "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"" FN_ARN
                                  "echo\",\"End\":true}}}"),
             "create direct");
    pl_aws_execution ex;
    char *arn = NULL;
    sfn_run("direct", "run-1", "{\"x\":41}", &ex, &arn);
    cJSON *out = cJSON_Parse(ex.output ? ex.output : "");
    PL_CHECK(ex.status && !strcmp(ex.status, "SUCCEEDED") &&
                 cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(out, "event"), "x")) == 41,
             "direct Task ran echo: %s %s", ex.status ? ex.status : "?", ex.output ? ex.output : "");
    PL_CHECK(arn && !strcmp(arn, EX_ARN "direct:run-1"), "execution ARN %s", arn ? arn : "");
    cJSON_Delete(out);
    pl_aws_execution_free(&ex);

    /* History: ExecutionStarted first, ExecutionSucceeded last, epoch timestamps, paging. */
    char body[512];
    cJSON *j = NULL;
    snprintf(body, sizeof body, "{\"executionArn\":\"%s\",\"reverseOrder\":true,\"maxResults\":1}", arn);
    long code = sfn_raw("GetExecutionHistory", body, NULL, &j);
    const cJSON *ev = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "events"), 0);
    PL_CHECK(code == 200 && !strcmp(jstr(ev, "type"), "ExecutionSucceeded") &&
                 cJSON_GetNumberValue(cJSON_GetObjectItem(ev, "timestamp")) > 1.6e9 && *jstr(j, "nextToken"),
             "history, newest first: HTTP %ld %s", code, j ? cJSON_PrintUnformatted(j) : "");
    cJSON_Delete(j);
    snprintf(body, sizeof body, "{\"executionArn\":\"%s\"}", arn);
    code = sfn_raw("GetExecutionHistory", body, NULL, &j);
    const cJSON *evs = cJSON_GetObjectItem(j, "events");
    PL_CHECK(code == 200 && cJSON_GetArraySize(evs) >= 5 &&
                 !strcmp(jstr(cJSON_GetArrayItem(evs, 0), "type"), "ExecutionStarted") &&
                 !strcmp(jstr(cJSON_GetArrayItem(evs, 3), "type"), "TaskSucceeded"),
             "full history: %d events", cJSON_GetArraySize(evs));
    cJSON_Delete(j);
    /* Same name: idempotent only while running with the same input. */
    snprintf(body, sizeof body, "{\"stateMachineArn\":\"" SM_ARN "direct\",\"name\":\"run-1\",\"input\":\"{}\"}");
    sfn_expect_error("StartExecution", body, NULL, 400, "ExecutionAlreadyExists", arn);
    free(arn);

    PL_CHECK(sfn_create("integration", "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":"
                                       "\"arn:aws:states:::lambda:invoke\",\"Parameters\":{\"FunctionName\":\"" FN_ARN
                                       "echo:$LATEST\",\"Payload.$\":\"$\"},\"End\":true}}}"),
             "create integration");
    sfn_run("integration", NULL, "{\"x\":7}", &ex, NULL);
    out = cJSON_Parse(ex.output ? ex.output : "");
    const cJSON *pay = cJSON_GetObjectItem(out, "Payload");
    PL_CHECK(ex.status && !strcmp(ex.status, "SUCCEEDED") && cJSON_GetNumberValue(cJSON_GetObjectItem(out, "StatusCode")) == 200 &&
                 cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(pay, "event"), "x")) == 7,
             "lambda:invoke wraps the Payload: %s", ex.output ? ex.output : "");
    cJSON_Delete(out);
    pl_aws_execution_free(&ex);

    /* A function error fails the execution with its errorType and document. */
    PL_CHECK(sfn_create("fails", "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"" FN_ARN
                                 "echo\",\"Parameters\":{\"op\":\"error\"},\"End\":true}}}"),
             "create fails");
    sfn_run("fails", "f1", NULL, &ex, NULL);
    PL_CHECK(ex.status && !strcmp(ex.status, "FAILED") && ex.error && !strcmp(ex.error, "TestError") && ex.cause &&
                 strstr(ex.cause, "asked to fail") && !ex.output,
             "function error: %s %s %s", ex.status ? ex.status : "?", ex.error ? ex.error : "", ex.cause ? ex.cause : "");
    pl_aws_execution_free(&ex);
    PL_CHECK(sfn_create("missing", "{\"StartAt\":\"T\",\"States\":{\"T\":{\"Type\":\"Task\",\"Resource\":\"" FN_ARN
                                   "nosuch\",\"End\":true}}}"),
             "create missing");
    sfn_run("missing", "m1", NULL, &ex, NULL);
    PL_CHECK(ex.error && !strcmp(ex.error, "Lambda.ResourceNotFoundException") && ex.cause && strstr(ex.cause, "nosuch"),
             "unknown function: %s %s", ex.error ? ex.error : "", ex.cause ? ex.cause : "");
    pl_aws_execution_free(&ex);

    /* The machine's TimeoutSeconds ends the execution as TIMED_OUT. */
    PL_CHECK(sfn_create("slow", "{\"TimeoutSeconds\":1,\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\","
                                "\"Seconds\":2,\"End\":true}}}"),
             "create slow");
    double t0 = now_s();
    sfn_run("slow", "s1", NULL, &ex, &arn);
    double dt = now_s() - t0;
    PL_CHECK(ex.status && !strcmp(ex.status, "TIMED_OUT") && ex.error && !strcmp(ex.error, "States.Timeout") &&
                 dt >= 0.95 && dt < 1.9,
             "timed out after %.2f s: %s", dt, ex.status ? ex.status : "?");
    pl_aws_execution_free(&ex);
    free(arn);

    /* StopExecution aborts a running execution with the given error. */
    pl_aws_opts o = {NULL, BASE, 10000};
    pl_err err = {0};
    PL_CHECK(sfn_create("waits", "{\"StartAt\":\"W\",\"States\":{\"W\":{\"Type\":\"Wait\",\"Seconds\":1,\"End\":true}}}"),
             "create waits");
    PL_CHECK(pl_aws_sfn_start_execution(&o, SM_ARN "waits", "w1", "{\"a\":1}", &arn, &err) == PL_OK, "start: %s", err.msg);
    free(arn);
    PL_CHECK(pl_aws_sfn_start_execution(&o, SM_ARN "waits", "w1", "{\"a\":1}", &arn, &err) == PL_OK,
             "same name and input while running is idempotent: %s", err.msg);
    free(arn);
    sfn_expect_error("StartExecution", "{\"stateMachineArn\":\"" SM_ARN "waits\",\"name\":\"w1\",\"input\":\"{}\"}", NULL,
                     400, "ExecutionAlreadyExists", "w1");
    code = sfn_raw("StopExecution", "{\"executionArn\":\"" EX_ARN "waits:w1\",\"error\":\"Halt\",\"cause\":\"by test\"}", NULL,
                   &j);
    PL_CHECK(code == 200 && cJSON_GetNumberValue(cJSON_GetObjectItem(j, "stopDate")) > 1.6e9, "StopExecution: %ld", code);
    cJSON_Delete(j);
    PL_CHECK(pl_aws_sfn_describe_execution(&o, EX_ARN "waits:w1", &ex, &err) == PL_OK && !strcmp(ex.status, "ABORTED") &&
                 ex.error && !strcmp(ex.error, "Halt") && ex.cause && !strcmp(ex.cause, "by test"),
             "aborted: %s %s", ex.status ? ex.status : err.msg, ex.error ? ex.error : "");
    pl_aws_execution_free(&ex);
    code = sfn_raw("ListExecutions", "{\"stateMachineArn\":\"" SM_ARN "waits\",\"statusFilter\":\"ABORTED\"}", NULL, &j);
    PL_CHECK(code == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(j, "executions")) == 1, "ListExecutions ABORTED");
    cJSON_Delete(j);
    code = sfn_raw("GetExecutionHistory", "{\"executionArn\":\"" EX_ARN "waits:w1\",\"reverseOrder\":true}", NULL, &j);
    PL_CHECK(!strcmp(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "events"), 0), "type"), "ExecutionAborted"),
             "aborted history ends with ExecutionAborted");
    cJSON_Delete(j);
}

static void test_sfn_errors(void)
{
    pl_aws_opts o = {NULL, BASE, 10000};
    pl_err err = {0};
    char *arn = NULL;
    int st = pl_aws_sfn_start_execution(&o, SM_ARN "nope", NULL, "{}", &arn, &err);
    PL_CHECK(st == PL_ERR_ARG && strstr(err.msg, "StateMachineDoesNotExist") && strstr(err.msg, SM_ARN "nope") &&
                 strstr(err.msg, BASE),
             "unknown machine names the ARN and the endpoint: %s", err.msg);
    pl_aws_execution ex;
    st = pl_aws_sfn_describe_execution(&o, EX_ARN "direct:never", &ex, &err);
    PL_CHECK(st == PL_ERR_ARG && strstr(err.msg, "ExecutionDoesNotExist"), "unknown execution: %s", err.msg);
    const char *def = "{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}}";
    char body[1024];
    snprintf(body, sizeof body, "{\"name\":\"bad name\",\"definition\":\"%s\",\"roleArn\":\"arn:aws:iam::0:role/r\"}",
             "{}");
    sfn_expect_error("CreateStateMachine", body, NULL, 400, "InvalidName", "bad name");
    char longname[100];
    memset(longname, 'n', 81);
    longname[81] = '\0';
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"definition\":\"{}\",\"roleArn\":\"arn:aws:iam::0:role/r\"}", longname);
    sfn_expect_error("CreateStateMachine", body, NULL, 400, "ValidationException", "less than or equal to 80");
    sfn_expect_error("CreateStateMachine",
                     "{\"name\":\"x\",\"definition\":\"{\\\"StartAt\\\":\\\"A\\\",\\\"States\\\":{\\\"A\\\":{\\\"Type\\\":"
                     "\\\"Pass\\\",\\\"Next\\\":\\\"B\\\"}}}\",\"roleArn\":\"arn:aws:iam::0:role/r\"}",
                     NULL, 400, "InvalidDefinition", "state 'A'");
    sfn_expect_error("CreateStateMachine",
                     "{\"name\":\"x\",\"definition\":\"{\\\"StartAt\\\":\\\"A\\\",\\\"States\\\":{\\\"A\\\":{\\\"Type\\\":"
                     "\\\"Task\\\",\\\"Resource\\\":\\\"arn:aws:states:::sqs:sendMessage\\\",\\\"End\\\":true}}}\","
                     "\"roleArn\":\"arn:aws:iam::0:role/r\"}",
                     NULL, 400, "InvalidDefinition", "sqs:sendMessage");
    sfn_expect_error("CreateStateMachine", "{\"name\":\"x\",\"definition\":\"{}\",\"roleArn\":\"admin\"}", NULL, 400,
                     "InvalidArn", "roleArn");
    sfn_expect_error("CreateStateMachine", "{\"name\":\"x\",\"roleArn\":\"arn:aws:iam::0:role/r\"}", NULL, 400,
                     "ValidationException", "'definition'");
    /* Same name: the same definition is idempotent, another is a conflict. */
    char arn2[256];
    PL_CHECK(pl_faas_create_state_machine(P, "pass", def, NULL, arn2, sizeof arn2, &err) == PL_OK &&
                 !strcmp(arn2, SM_ARN "pass"),
             "library create: %s", err.msg);
    PL_CHECK(pl_faas_create_state_machine(P, "pass", def, NULL, arn2, sizeof arn2, &err) == PL_OK, "idempotent create");
    PL_CHECK(pl_faas_create_state_machine(P, "pass", "{\"StartAt\":\"Q\",\"States\":{\"Q\":{\"Type\":\"Succeed\"}}}",
                                          NULL, arn2, sizeof arn2, &err) == PL_ERR_ARG &&
                 strstr(err.msg, "StateMachineAlreadyExists"),
             "conflicting create: %s", err.msg);
    sfn_expect_error("StartExecution", "{\"stateMachineArn\":\"" SM_ARN "pass\",\"input\":\"{oops\"}", NULL, 400,
                     "InvalidExecutionInput", "not JSON");
    sfn_expect_error("StartExecution", "{\"stateMachineArn\":\"" SM_ARN "pass\",\"name\":\"a:b\"}", NULL, 400,
                     "InvalidName", "a:b");
    sfn_expect_error("StartExecution", "{\"stateMachineArn\":\"arn:aws:lambda:us-east-1:0:function:f\"}", NULL, 400,
                     "InvalidArn", "arn:aws:lambda");
    sfn_expect_error("StartExecution", "{\"stateMachineArn\":42}", NULL, 400, "SerializationException", "stateMachineArn");
    sfn_expect_error("StartExecution", "{\"stateMachineArn\":", NULL, 400, "SerializationException", "not a JSON object");
    sfn_expect_error("StartExecution", "{}", "application/json", 400, "SerializationException", "x-amz-json-1.0");
    sfn_expect_error("StartExecutions", "{}", NULL, 400, "UnknownOperationException", "StartExecutions");
    sfn_expect_error("DescribeExecution", "{\"executionArn\":\"" EX_ARN "pass\"}", NULL, 400, "InvalidArn", "execution");
    expect_raw("POST", BASE, "{}", "Content-Type: application/x-amz-json-1.0", 400, "without an X-Amz-Target");
    /* Describe, list, delete. */
    cJSON *j = NULL;
    long code = sfn_raw("DescribeStateMachine", "{\"stateMachineArn\":\"" SM_ARN "pass\"}", NULL, &j);
    PL_CHECK(code == 200 && !strcmp(jstr(j, "definition"), def) && !strcmp(jstr(j, "status"), "ACTIVE") &&
                 !strcmp(jstr(j, "name"), "pass"),
             "DescribeStateMachine: %ld", code);
    cJSON_Delete(j);
    code = sfn_raw("ListStateMachines", "{\"maxResults\":2}", NULL, &j);
    PL_CHECK(code == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(j, "stateMachines")) == 2 && !strcmp(jstr(j, "nextToken"), "2"),
             "ListStateMachines pages");
    cJSON_Delete(j);
    code = sfn_raw("DeleteStateMachine", "{\"stateMachineArn\":\"" SM_ARN "pass\"}", NULL, &j);
    cJSON_Delete(j);
    PL_CHECK(code == 200, "DeleteStateMachine: %ld", code);
    sfn_expect_error("DescribeStateMachine", "{\"stateMachineArn\":\"" SM_ARN "pass\"}", NULL, 400,
                     "StateMachineDoesNotExist", "pass");
}

/* Last: the platform then requires SigV4 for good. */
static void test_sigv4(void)
{
    pl_err err = {0};
    PL_CHECK(pl_faas_require_sigv4(P, "AKIDTEST", NULL, &err) == PL_ERR_ARG, "key without secret rejected");
    PL_CHECK(pl_faas_require_sigv4(P, "AKIDTEST", "test-secret", &err) == PL_OK, "require: %s", err.msg);
    sfn_expect_error("ListStateMachines", "{}", NULL, 403, "MissingAuthenticationTokenException", "SigV4");
    char url[256];
    snprintf(url, sizeof url, "%s/2015-03-31/functions/echo/invocations", BASE);
    expect_raw("POST", url, "{}", "Authorization: Basic abc", 400, "expected 'AWS4-HMAC-SHA256 Credential=");
    pl_aws_opts o = {NULL, BASE, 10000};
    pl_aws_response res;
    char *arn = NULL;
    /* The right key: the clients' signatures verify (an ARN in the path checks the double encoding). */
    int st = pl_aws_lambda_invoke(&o, FN_ARN "echo", "{\"x\":3}", 7, &res, &err);
    PL_CHECK(st == PL_OK && res.http_status == 200 && strstr(res.body, "\"x\":3"), "signed Invoke: %ld %s",
             res.http_status, res.body ? res.body : err.msg);
    pl_aws_response_free(&res);
    st = pl_aws_sfn_start_execution(&o, SM_ARN "direct", NULL, "{}", &arn, &err);
    PL_CHECK(st == PL_OK, "signed StartExecution: %s", err.msg);
    free(arn);
    /* A wrong secret, key, region. */
    setenv("AWS_SECRET_ACCESS_KEY", "wrong", 1);
    st = pl_aws_sfn_start_execution(&o, SM_ARN "direct", NULL, "{}", &arn, &err);
    PL_CHECK(st != PL_OK && strstr(err.msg, "InvalidSignatureException") && strstr(err.msg, "does not match"),
             "wrong secret: %s", err.msg);
    st = pl_aws_lambda_invoke(&o, "echo", "{}", 2, &res, &err);
    PL_CHECK(st == PL_OK && res.http_status == 403 && res.error_type && !strcmp(res.error_type, "InvalidSignatureException"),
             "wrong secret on Invoke: %ld", res.http_status);
    pl_aws_response_free(&res);
    setenv("AWS_SECRET_ACCESS_KEY", "test-secret", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDOTHER", 1);
    st = pl_aws_sfn_start_execution(&o, SM_ARN "direct", NULL, "{}", &arn, &err);
    PL_CHECK(st != PL_OK && strstr(err.msg, "UnrecognizedClientException") && strstr(err.msg, "AKIDOTHER"),
             "unknown key: %s", err.msg);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    pl_aws_opts eu = {"eu-west-1", BASE, 10000};
    st = pl_aws_sfn_start_execution(&eu, SM_ARN "direct", NULL, "{}", &arn, &err);
    PL_CHECK(st != PL_OK && strstr(err.msg, "scoped to a valid region, not 'eu-west-1'"), "wrong region: %s", err.msg);
}

static void add(const char *name, const char *exe, const char *extra, int mem, double timeout, int conc, double idle)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "'%s' runtime %s", exe, extra);
    pl_faas_function f = {name, cmd, mem, timeout, conc, idle, NULL, NULL};
    pl_err err = {0};
    PL_CHECK(pl_faas_add_function(P, &f, &err) == PL_OK, "add %s: %s", name, err.msg);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "runtime"))
        return faas_runtime_main(argc >= 3 && !strcmp(argv[2], "init-error"));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char exe[512] = {0}, log[600];
    PL_CHECK(readlink("/proc/self/exe", exe, sizeof exe - 1) > 0, "own path");
    snprintf(log, sizeof log, "%s/faas_report.jsonl", pl_test_tmpdir());
    unlink(log);
    pl_faas_config cfg = {NULL, 0, log, NULL, PL_FAAS_MEM_AUTO};
    pl_err err = {0};
    if (pl_faas_create(&cfg, &P, &err) != PL_OK) {
        PL_CHECK(0, "create: %s", err.msg);
        PL_TEST_MAIN();
    }
    printf("memory limits: %s\n", pl_faas_memory_mode_name(P));
    snprintf(BASE, sizeof BASE, "http://127.0.0.1:%d", pl_faas_port(P));
    add("echo", exe, "", 128, 5, 2, 0.5);
    add("slow", exe, "", 128, 0.3, 1, 60);
    add("mem", exe, "", 96, 10, 1, 60);
    add("bad", exe, "init-error", 128, 5, 1, 60);
    pl_faas_function dup = {"echo", "true", 0, 0, 0, 0, NULL, NULL};
    PL_CHECK(pl_faas_add_function(P, &dup, &err) == PL_ERR_ARG, "duplicate function rejected");

    int pid = test_roundtrip_cold_warm();
    test_scale_to_zero(pid);
    test_concurrency();
    test_failures();
    test_api_errors();
    usleep(200 * 1000); /* let the Event invocation finish */
    test_report_log(log);
    test_sfn_runs();
    test_sfn_errors();
    test_sigv4();
    pid_t live[8];
    int n = pl_faas_env_pids(P, "echo", live, 8);
    pl_faas_destroy(P);
    for (int i = 0; i < n && i < 8; i++)
        PL_CHECK(gone(live[i]), "process %d stopped on destroy", (int)live[i]);
    curl_global_cleanup();
    PL_TEST_MAIN();
}
