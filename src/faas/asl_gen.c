/* asl_gen.c — the peerless gradient state machine (docs/statemachines.md):
 * ProcessInput (Task) -> ComputeGradients (Map over $.batches, one
 * compute_gradient Task per batch) -> Aggregate (Pass or Task). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faas/asl_internal.h"

/* Errors worth retrying: Lambda's transient service errors, timeouts, and a
 * function environment that died (Lambda.Unknown on AWS, Runtime.ExitError /
 * Runtime.OutOfMemory on the local platform): a fresh environment may
 * succeed, and a retried gradient overwrites the same key. States.TaskFailed
 * is not retried: a function that fails on its input would fail again. */
static const char *const transient[] = {"Lambda.ServiceException", "Lambda.AWSLambdaException",
                                        "Lambda.SdkClientException", "Lambda.TooManyRequestsException",
                                        "Lambda.Unknown", "Runtime.ExitError", "States.Timeout"};

static cJSON *retry_block(void)
{
    cJSON *arr = cJSON_CreateArray();
    cJSON *r = cJSON_CreateObject();
    cJSON *names = cJSON_CreateStringArray(transient, (int)(sizeof transient / sizeof transient[0]));
    if (!arr || !r || !names) {
        cJSON_Delete(arr);
        cJSON_Delete(r);
        cJSON_Delete(names);
        return NULL;
    }
    cJSON_AddItemToObject(r, "ErrorEquals", names);
    cJSON_AddNumberToObject(r, "IntervalSeconds", 1);
    cJSON_AddNumberToObject(r, "MaxAttempts", 3);
    cJSON_AddNumberToObject(r, "BackoffRate", 2.0);
    cJSON_AddItemToArray(arr, r);
    return arr;
}

static cJSON *task(const char *arn, int timeout, const char *next)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "Type", "Task");
    cJSON_AddStringToObject(t, "Resource", arn);
    if (timeout > 0)
        cJSON_AddNumberToObject(t, "TimeoutSeconds", timeout);
    cJSON_AddItemToObject(t, "Retry", retry_block());
    if (next)
        cJSON_AddStringToObject(t, "Next", next);
    else
        cJSON_AddBoolToObject(t, "End", 1);
    return t;
}

/* Adds "key.$": path pairs from a NULL-terminated list. */
static void add_paths(cJSON *o, const char *const *kv)
{
    char key[64];
    for (; kv[0]; kv += 2) {
        snprintf(key, sizeof key, "%s.$", kv[0]);
        cJSON_AddStringToObject(o, key, kv[1]);
    }
}

/* The compute_gradient event of docs/serverless.md: per-step fields from the
 * step document, per-batch fields from the Map item. */
static const char *const step_fields[] = {"run", "$.run", "step", "$.step", "rank", "$.rank",
                                          "model_version", "$.model_version", "model_key", "$.model_key",
                                          "model", "$.model", "num_classes", "$.num_classes",
                                          "dataset", "$.dataset", "input_size", "$.input_size",
                                          "loss", "$.loss", "seed", "$.seed", "store", "$.store", NULL};

static cJSON *process_input(const pl_asl_gen_config *c)
{
    cJSON *t = task(c->process_input_arn ? c->process_input_arn : c->function_arn, c->task_timeout,
                    "ComputeGradients");
    if (!c->process_input_arn) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "action", "process_input");
        cJSON_AddStringToObject(p, "input.$", "$");
        cJSON_AddItemToObject(t, "Parameters", p);
    }
    return t;
}

static cJSON *compute_gradients(const pl_asl_gen_config *c)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "Type", "Map");
    cJSON_AddStringToObject(m, "ItemsPath", "$.batches");
    cJSON_AddNumberToObject(m, "MaxConcurrency", c->max_concurrency);
    cJSON *sel = cJSON_AddObjectToObject(m, "ItemSelector");
    cJSON_AddStringToObject(sel, "action", "compute_gradient");
    add_paths(sel, step_fields);
    const char *const item[] = {"batch", "$$.Map.Item.Value.batch", "batch_key", "$$.Map.Item.Value.batch_key",
                                "out_key", "$$.Map.Item.Value.out_key", NULL};
    add_paths(sel, item);
    cJSON *proc = cJSON_AddObjectToObject(m, "ItemProcessor");
    cJSON *pc = cJSON_AddObjectToObject(proc, "ProcessorConfig");
    cJSON_AddStringToObject(pc, "Mode", "INLINE");
    cJSON_AddStringToObject(proc, "StartAt", "ComputeGradient");
    cJSON *states = cJSON_AddObjectToObject(proc, "States");
    cJSON_AddItemToObject(states, "ComputeGradient", task(c->function_arn, c->task_timeout, NULL));
    cJSON_AddStringToObject(m, "ResultPath", "$.results");
    cJSON_AddStringToObject(m, "Next", "Aggregate");
    return m;
}

static cJSON *aggregate(const pl_asl_gen_config *c)
{
    cJSON *a = c->aggregate_arn ? task(c->aggregate_arn, c->task_timeout, NULL) : cJSON_CreateObject();
    cJSON *p = cJSON_CreateObject();
    if (!c->aggregate_arn) {
        cJSON_AddStringToObject(a, "Type", "Pass");
        cJSON_AddBoolToObject(a, "End", 1);
    } else {
        cJSON_AddStringToObject(p, "action", "aggregate");
    }
    add_paths(p, step_fields);
    const char *const lists[] = {"gradients", "$.results[*].gradient", "samples", "$.results[*].samples",
                                 "losses", "$.results[*].loss", NULL};
    add_paths(p, lists);
    cJSON_AddItemToObject(a, "Parameters", p);
    return a;
}

int pl_asl_generate(const pl_asl_gen_config *c, char **json, pl_err *err)
{
    *json = NULL;
    if (c->batches < 1)
        return pl_err_set(err, PL_ERR_ARG, "--batches must be at least 1 (got %d)", c->batches);
    if (!c->function_arn || !c->function_arn[0])
        return pl_err_set(err, PL_ERR_ARG, "--function-arn is required");
    if (c->max_concurrency < 0)
        return pl_err_set(err, PL_ERR_ARG, "--max-concurrency must be >= 0 (got %d)", c->max_concurrency);
    cJSON *root = cJSON_CreateObject();
    char comment[160];
    snprintf(comment, sizeof comment,
             "peerless: gradients of one training step, %d batches per peer, computed by functions", c->batches);
    cJSON_AddStringToObject(root, "Comment", comment);
    cJSON_AddStringToObject(root, "StartAt", "ProcessInput");
    cJSON *states = cJSON_AddObjectToObject(root, "States");
    cJSON_AddItemToObject(states, "ProcessInput", process_input(c));
    cJSON_AddItemToObject(states, "ComputeGradients", compute_gradients(c));
    cJSON_AddItemToObject(states, "Aggregate", aggregate(c));
    *json = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!*json)
        return pl_err_set(err, PL_ERR_NOMEM, "statemachine: out of memory");
    /* The document must pass our own validator; an incomplete tree (a failed
     * allocation above) is caught here. */
    pl_asl_machine *m = NULL;
    int st = pl_asl_parse(*json, strlen(*json), &m, err);
    pl_asl_destroy(m);
    if (st) {
        free(*json);
        *json = NULL;
        return pl_err_wrap(err, st, "statemachine: generated definition is invalid");
    }
    return PL_OK;
}
