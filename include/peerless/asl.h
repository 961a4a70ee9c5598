/* asl.h — Amazon States Language (AWS Step Functions) state machines:
 * parse and validate a definition, run it locally with a caller-supplied
 * task invoker, and generate the definition peerless uses to offload the
 * gradients of one training step to functions.
 *
 * Supported: Task, Pass, Choice, Wait (Seconds, SecondsPath), Succeed, Fail,
 * Parallel, Map (ItemsPath, ItemSelector / Parameters, MaxConcurrency,
 * ItemProcessor / Iterator); Retry (ErrorEquals, IntervalSeconds,
 * MaxAttempts, BackoffRate, MaxDelaySeconds) and Catch (ErrorEquals, Next,
 * ResultPath); InputPath, Parameters, ResultSelector, ResultPath,
 * OutputPath; TimeoutSeconds on Task. Paths: `$`, `$.a.b`, `$.a[3]`,
 * `$['a']`, `$.a[*].b` (not in ResultPath) and the context object `$$.`
 * (Execution.Id/Name/Input/StartTime, State.Name/EnteredTime,
 * StateMachine.Id, Map.Item.Index/Value). Definitions using anything else
 * (Timestamp waits, intrinsic functions, JSONata) are rejected by the parser
 * with a message naming the state and field. docs/statemachines.md has the
 * details. */
#ifndef PEERLESS_ASL_H
#define PEERLESS_ASL_H

#include <stddef.h>

#include "peerless/status.h"

/* ---- parse / validate ------------------------------------------------- */

typedef struct pl_asl_machine pl_asl_machine; /* immutable after parse */

/* Parse and validate the definition json[0..len) (not NUL-terminated
 * necessarily). On success *out owns the machine (free with
 * pl_asl_destroy); on failure *out is NULL and err names the state and
 * field ("state 'Aggregate': Next 'Agregate' is not a state"). Unreachable
 * states are rejected, as AWS does. */
int pl_asl_parse(const char *json, size_t len, pl_asl_machine **out, pl_err *err);
void pl_asl_destroy(pl_asl_machine *m); /* NULL is a no-op */

/* Number of top-level states and the name of the StartAt state (borrowed
 * from m). */
int pl_asl_state_count(const pl_asl_machine *m);
const char *pl_asl_start_at(const pl_asl_machine *m);

/* ---- run ---------------------------------------------------------------- */

/* Invoke the function `resource` (a Task's Resource ARN) on input_json.
 * Return 0 with *output_json set (malloc'd JSON text, freed by the
 * interpreter), or nonzero with *error (and optionally *cause) set
 * (malloc'd; e.g. "Lambda.ServiceException", "States.TaskFailed"). Called
 * concurrently from several threads by Map and Parallel states. A call that
 * passes the Task's TimeoutSeconds is reported as States.Timeout and its
 * late result discarded, but pl_asl_execute returns only after every call
 * has returned. */
typedef int (*pl_asl_invoke_fn)(void *ctx, const char *resource, const char *input_json, char **output_json,
                                char **error, char **cause);

typedef struct pl_asl_options {
    pl_asl_invoke_fn invoke; /* required when the machine has Task states */
    void *ctx;               /* passed to invoke */
    double time_scale;       /* multiplies Wait, Retry intervals and TimeoutSeconds; 0 = 1 */
    int max_threads;         /* cap on threads per Map/Parallel state; 0 = 64 */
    const char *execution_id; /* $$.Execution.Id; NULL = "peerless:execution:local" */
} pl_asl_options;

typedef enum pl_asl_exec_status { PL_ASL_SUCCEEDED = 0, PL_ASL_FAILED = 1 } pl_asl_exec_status;

typedef struct pl_asl_execution pl_asl_execution;

/* Run m on input_json (NULL = "{}"). Returns PL_OK with *out set whenever
 * the execution ran to an end, successful or not (see
 * pl_asl_execution_status); a negative status only if it could not run
 * (bad input JSON, out of memory, no invoker). *out is freed with
 * pl_asl_execution_destroy. */
int pl_asl_execute(const pl_asl_machine *m, const char *input_json, const pl_asl_options *opt,
                   pl_asl_execution **out, pl_err *err);
void pl_asl_execution_destroy(pl_asl_execution *e); /* NULL is a no-op */

pl_asl_exec_status pl_asl_execution_status(const pl_asl_execution *e);
/* Final output JSON (succeeded), or NULL. Borrowed from e. */
const char *pl_asl_execution_output(const pl_asl_execution *e);
/* Error name and cause (failed), or NULL. Borrowed from e. */
const char *pl_asl_execution_error(const pl_asl_execution *e);
const char *pl_asl_execution_cause(const pl_asl_execution *e);
/* The history as a JSON object {"events": [{"id", "timestamp", "type",
 * ...details}]}, like GetExecutionHistory. *json is malloc'd; caller frees. */
int pl_asl_execution_history(const pl_asl_execution *e, char **json, pl_err *err);
/* Number of events of `type` ("TaskFailed", "MapIterationStarted", ...). */
int pl_asl_execution_count_events(const pl_asl_execution *e, const char *type);

/* ---- the peerless gradient state machine ---------------------------------- */

typedef struct pl_asl_gen_config {
    int batches;                   /* >= 1: documented in Comment only; the Map runs over $.batches */
    const char *function_arn;      /* required: compute_gradient function */
    int max_concurrency;           /* >= 0; 0 = unlimited */
    const char *process_input_arn; /* NULL = function_arn with {"action": "process_input"} */
    const char *aggregate_arn;     /* NULL = a Pass state */
    int task_timeout;              /* TimeoutSeconds of each Task; 0 = none */
} pl_asl_gen_config;

/* Write the definition (ProcessInput Task -> ComputeGradients Map ->
 * Aggregate) as pretty JSON into *json (malloc'd; caller frees). */
int pl_asl_generate(const pl_asl_gen_config *c, char **json, pl_err *err);

#endif
