/* function.h — the serverless gradient function (`peerless function`, an AWS
 * Lambda custom runtime) and its event handler. The contract is
 * docs/serverless.md; the state-machine side is docs/statemachines.md.
 *
 * Events (JSON objects, field "action"):
 *   compute_gradient  one forward + backward of the published model
 *                     `model_key` on batch `batch_key`; writes `out_key`
 *                     and answers {"gradient", "samples", "loss",
 *                     "model_version"}.
 *   process_input     {"action": "process_input", "input": STEP} where STEP
 *                     holds every compute_gradient field except batch,
 *                     batch_key and out_key, plus "batches": N, a list of
 *                     batch indices, or a list of {batch, batch_key,
 *                     out_key} (keys validated); answers the step document:
 *                     STEP's fields with "batches": [{batch, batch_key,
 *                     out_key}...] (keys derived from the layout when not
 *                     given). A compute_gradient event whose "batch" is such
 *                     an entry object takes the entry's fields for those
 *                     missing at the top level.
 * Every field is validated (types, ranges, keys confined to "RUN/"); a bad
 * event fails with error type "InvalidEvent" and a message naming the field.
 *
 * A pl_fn keeps the loaded model across calls, keyed by (model, model_key,
 * model_version, num_classes, input shape), so warm invocations reuse the
 * model and its backend plans; and the open store, keyed by URL.
 * Not thread-safe: one pl_fn serves one invocation at a time (as a Lambda
 * execution environment does).
 */
#ifndef PEERLESS_FUNCTION_H
#define PEERLESS_FUNCTION_H

#include <stddef.h>

#include "peerless/status.h"

typedef struct pl_fn pl_fn;

typedef struct pl_fn_config {
    const char *store_url;  /* default store when an event has no "store"
                               (NULL: the event must name one) */
    const char *backend;    /* "fast" (NULL) or "ref" */
} pl_fn_config;

/* Error types of pl_fn_handle (Lambda's errorType). */
#define PL_FN_INVALID_EVENT "InvalidEvent"   /* bad field, type, range, key */
#define PL_FN_NOT_FOUND "ObjectNotFound"     /* model or batch object missing */
#define PL_FN_BAD_OBJECT "InvalidObject"     /* model or batch object malformed */
#define PL_FN_STORE_ERROR "StoreError"       /* store unreachable, write failed */
#define PL_FN_COMPUTE_ERROR "ComputeError"   /* forward/backward failed */

/* Create a handler (cfg copied; NULL = defaults). When cfg->store_url is set
 * the store is opened now, so a bad store fails at init. *out owned by the
 * caller (pl_fn_destroy). */
int pl_fn_create(const pl_fn_config *cfg, pl_fn **out, pl_err *err);
/* NULL is a no-op. */
void pl_fn_destroy(pl_fn *f);

/* Handle one event (`len` bytes of JSON). PL_OK: *response is the malloc'd
 * JSON answer (caller frees). Failure: *response NULL, *error_type a static
 * PL_FN_* string and err the message. */
int pl_fn_handle(pl_fn *f, const char *event, size_t len, char **response, const char **error_type,
                 pl_err *err);

/* Loads since creation (a warm call with a cached model does not load). */
int pl_fn_model_loads(const pl_fn *f);

/* Compute threads for a Lambda environment: PEERLESS_THREADS if set (>= 1),
 * else ceil(AWS_LAMBDA_FUNCTION_MEMORY_SIZE / 1769) (Lambda gives one vCPU
 * per 1769 MB), capped at the online CPUs; else 0 (all cores). */
int pl_fn_threads_from_env(void);

/* The Lambda Runtime API loop on `runtime_api` ("host:port", the value of
 * AWS_LAMBDA_RUNTIME_API): GET .../invocation/next, handle, POST the
 * response or the error ({"errorMessage", "errorType", "stackTrace"}).
 * An init failure (e.g. the store cannot be opened) is posted to
 * /runtime/init/error and returned. Returns only on an init failure or when
 * the Runtime API fails (PL_ERR_IO). */
int pl_fn_runtime_loop(const char *runtime_api, const pl_fn_config *cfg, pl_err *err);

#endif
