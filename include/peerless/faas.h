/* faas.h — a local AWS-Lambda-compatible function platform and an invoke client.
 *
 * A platform (pl_faas) hosts named functions. A function is any executable
 * command that speaks the Lambda Runtime API (like Lambda's `provided`
 * runtimes). The platform serves the Lambda Invoke API on one port
 * (POST /2015-03-31/functions/NAME/invocations) and, for every execution
 * environment (one function process), the Runtime API on that environment's
 * own loopback port (AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT).
 *
 * Resource allocation follows Lambda: an invocation goes to a warm idle
 * environment, else a new process is started (cold start) up to the
 * function's concurrency; beyond it the call is throttled (HTTP 429
 * TooManyRequestsException, never queued). Idle environments stop after the
 * idle timeout (scale to zero). Memory is enforced with a cgroup v1 memory
 * group per environment when /sys/fs/cgroup/memory is writable, else with
 * RLIMIT_AS; the timeout is enforced by killing the process group. Every
 * invocation produces a report (Lambda's REPORT line) kept in memory and
 * appended as one JSON line to the log file.
 *
 * The same port serves the AWS Step Functions JSON 1.0 API (POST / with
 * X-Amz-Target: AWSStepFunctions.ACTION): state machines in Amazon States
 * Language run asynchronously on the local interpreter (asl.h), their Task
 * states invoking this platform's functions. Optionally every request must
 * carry a SigV4 Authorization header (pl_faas_require_sigv4). See
 * docs/faas.md.
 *
 * Thread safety: every pl_faas_* call on a platform may come from any thread.
 */
#ifndef PEERLESS_FAAS_H
#define PEERLESS_FAAS_H

#include <stddef.h>
#include <sys/types.h>

#include "peerless/status.h"

typedef struct pl_faas pl_faas;

typedef enum pl_faas_memory_mode {
    PL_FAAS_MEM_AUTO = 0,   /* cgroup v1 when writable, else RLIMIT_AS */
    PL_FAAS_MEM_CGROUP = 1, /* cgroup v1 or fail at create */
    PL_FAAS_MEM_RLIMIT = 2  /* RLIMIT_AS (virtual memory) only */
} pl_faas_memory_mode;

typedef struct pl_faas_config {
    const char *host;        /* Invoke API bind address; NULL = 127.0.0.1 */
    int port;                /* Invoke API port; 0 = any free port */
    const char *log_path;    /* REPORT JSON lines appended here; NULL = none */
    const char *region;      /* AWS_REGION for functions; NULL = us-east-1 */
    pl_faas_memory_mode memory_mode;
} pl_faas_config;

typedef struct pl_faas_function {
    const char *name;        /* [A-Za-z0-9_-]{1,64} */
    const char *command;     /* plain words: exec'd directly; else `/bin/sh -c "exec COMMAND"` */
    int memory_mb;           /* 0 = 128; 16..10240 */
    double timeout_s;        /* 0 = 3; per invocation, from event delivery */
    int concurrency;         /* 0 = 10; max simultaneous environments */
    double idle_timeout_s;   /* 0 = 300; idle environment stopped after this */
    const char *handler;     /* _HANDLER; NULL = "handler" */
    const char *task_root;   /* LAMBDA_TASK_ROOT; NULL = current directory */
} pl_faas_function;

/* One invocation record (Lambda's REPORT line). */
typedef struct pl_faas_report {
    char request_id[40];
    char function[72];
    int cold;                  /* 1 if this invocation started the environment */
    double init_ms;            /* process start .. first /next (cold only, else 0) */
    double duration_ms;        /* event delivery .. response/error/kill */
    long billed_ms;            /* duration rounded up to 1 ms */
    int memory_mb;             /* configured memory size */
    double max_memory_used_mb; /* cgroup max_usage_in_bytes, or the process VmHWM */
    char outcome[40];          /* "success", "error" (function reported),
                                  "Sandbox.Timedout", "Runtime.ExitError",
                                  "Runtime.OutOfMemory", "Runtime.InitError" */
    pid_t pid;                 /* the environment's process */
} pl_faas_report;

/* Create a platform and start its Invoke API server. On success *out is
 * owned by the caller (pl_faas_destroy). `cfg` is copied. */
int pl_faas_create(const pl_faas_config *cfg, pl_faas **out, pl_err *err);
/* Register a function (strings copied). Fails with PL_ERR_ARG on a bad name,
 * value or a duplicate name. Functions can be added while serving. */
int pl_faas_add_function(pl_faas *p, const pl_faas_function *fn, pl_err *err);
/* Stop every environment (SIGKILL to each process group, reaped), the
 * servers and remove the cgroups. NULL is a no-op. */
void pl_faas_destroy(pl_faas *p);

/* Require an `Authorization: AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/
 * SERVICE/aws4_request, SignedHeaders=..., Signature=...` header on every
 * Invoke (SERVICE lambda) and Step Functions (SERVICE states) request, with
 * the platform's region and x-amz-date within 15 minutes. With access_key
 * and secret_key (copied; may be NULL) the signature itself is verified
 * and the key id must match; without, only the header's form and scope are
 * checked. Failures get AWS's error shape (403 MissingAuthenticationToken /
 * InvalidSignature / UnrecognizedClient, 400 IncompleteSignature). */
int pl_faas_require_sigv4(pl_faas *p, const char *access_key, const char *secret_key, pl_err *err);

/* CreateStateMachine without HTTP: name [A-Za-z0-9_-]{1,80}, definition in
 * Amazon States Language (validated like the API does), role_arn NULL for a
 * placeholder. On success writes
 * arn:aws:states:REGION:000000000000:stateMachine:NAME into arn[cap]. */
int pl_faas_create_state_machine(pl_faas *p, const char *name, const char *definition, const char *role_arn,
                                 char *arn, size_t cap, pl_err *err);

/* The Invoke API port (useful with port 0). */
int pl_faas_port(const pl_faas *p);
/* "cgroup-v1" or "rlimit-as": how memory limits are enforced. */
const char *pl_faas_memory_mode_name(const pl_faas *p);
/* Pids of the live environments of `function` (up to cap); returns how many
 * are live (may exceed cap). */
int pl_faas_env_pids(pl_faas *p, const char *function, pid_t *pids, int cap);
/* Copy reports [first, first+cap) of all invocations so far into out;
 * returns the number copied. */
size_t pl_faas_reports(pl_faas *p, size_t first, pl_faas_report *out, size_t cap);
/* Total number of reports so far. */
size_t pl_faas_report_count(pl_faas *p);

/* One HTTP result of the Invoke API. Strings are malloc'ed, owned by the
 * caller: free with pl_faas_result_free. */
typedef struct pl_faas_result {
    long http_status;
    char *body;             /* NUL-terminated; len excludes the NUL */
    size_t len;
    char *function_error;   /* X-Amz-Function-Error value or NULL */
    char *error_type;       /* x-amzn-ErrorType value or NULL */
    int retries;            /* throttled attempts that were retried */
} pl_faas_result;

typedef struct pl_faas_invoke_opts {
    const char *invocation_type; /* RequestResponse (NULL), Event, DryRun */
    long timeout_ms;             /* whole call incl. retries; 0 = 900000 */
    int max_retries;             /* retries on 429; < 0 = none, 0 = default 8 */
} pl_faas_invoke_opts;

/* POST url_base/2015-03-31/functions/FUNCTION/invocations with payload.
 * Retries on 429 with exponential backoff (10 ms doubling, max 1 s). Any
 * HTTP answer is PL_OK (inspect res->http_status); transport failures are
 * PL_ERR_IO. res is zeroed first; free it with pl_faas_result_free. */
int pl_faas_invoke_ex(const char *url_base, const char *function, const void *payload, size_t len,
                      const pl_faas_invoke_opts *opts, pl_faas_result *res, pl_err *err);
void pl_faas_result_free(pl_faas_result *res);

/* Synchronous invoke: PL_OK when the function ran (it may still have failed:
 * *function_error is then "Unhandled"/"Handled", else NULL) and *response
 * holds its payload (NUL-terminated, caller frees; also *function_error).
 * Non-200 answers (404, 429 after retries, 4xx/5xx) are PL_ERR_NOTFOUND /
 * PL_ERR_IO / PL_ERR_ARG with the server's message in err. */
int pl_faas_invoke(const char *url_base, const char *function, const void *payload, size_t len,
                   char **response, size_t *response_len, char **function_error, long timeout_ms,
                   pl_err *err);

#endif
