/* function_impl.h — private to the gradient function (src/faas/function*.c). */
#ifndef PEERLESS_FUNCTION_IMPL_H
#define PEERLESS_FUNCTION_IMPL_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "peerless/function.h"

/* A validated compute_gradient event. Strings are borrowed from the cJSON
 * tree it was read from. */
typedef struct pl_fn_event {
    const char *run, *model, *dataset, *loss, *store; /* store NULL: default */
    const char *model_key, *batch_key, *out_key;
    int step, rank, batch, num_classes, input_size, model_version;
    int64_t seed;
} pl_fn_event;

/* Read and validate a compute_gradient event from `ev` (see function.h for
 * the batch-item merge). PL_ERR_ARG naming the field on failure. */
int pl_fn_event_parse(const cJSON *ev, pl_fn_event *out, pl_err *err);

/* The process_input answer for event `ev`: a new cJSON step document
 * (caller deletes) in *out. PL_ERR_ARG naming the field on failure. */
int pl_fn_process_input(const cJSON *ev, cJSON **out, pl_err *err);

#endif
