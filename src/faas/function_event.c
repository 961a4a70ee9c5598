/* function_event.c — validation of the function's events (docs/serverless.md)
 * and the process_input action (docs/statemachines.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faas/function_impl.h"
#include "peerless/models.h"
#include "peerless/peer.h"
#include "peerless/store.h"

#define INT_LIMIT 2147483647.0 /* integers are below 2^31 */
#define MAX_BATCHES 100000

/* A field of the event, else of the batch item (may be NULL). */
static const cJSON *field(const cJSON *ev, const cJSON *item, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, name);
    return v || !item ? v : cJSON_GetObjectItemCaseSensitive(item, name);
}

static int get_int(const cJSON *v, const char *name, double lo, double hi, int64_t *out, pl_err *err)
{
    if (!v)
        return pl_err_set(err, PL_ERR_ARG, "field '%s' is missing", name);
    if (!cJSON_IsNumber(v))
        return pl_err_set(err, PL_ERR_ARG, "field '%s' must be an integer, got %s", name,
                          cJSON_IsString(v) ? "a string" : "another JSON type");
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < lo || d > hi)
        return pl_err_set(err, PL_ERR_ARG, "field '%s' is %.17g, expected an integer in [%.0f, %.0f]", name, d, lo,
                          hi);
    *out = (int64_t)d;
    return PL_OK;
}

static int get_i32(const cJSON *v, const char *name, double lo, double hi, int *out, pl_err *err)
{
    int64_t x = 0;
    int st = get_int(v, name, lo, hi, &x, err);
    *out = (int)x;
    return st;
}

static int get_str(const cJSON *v, const char *name, const char **out, pl_err *err)
{
    if (!v)
        return pl_err_set(err, PL_ERR_ARG, "field '%s' is missing", name);
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return pl_err_set(err, PL_ERR_ARG, "field '%s' must be a non-empty string", name);
    *out = v->valuestring;
    return PL_OK;
}

/* A store key under "RUN/". */
static int get_key(const cJSON *v, const char *name, const char *run, const char **out, pl_err *err)
{
    int st = get_str(v, name, out, err);
    if (st)
        return st;
    pl_err e2 = {0, ""};
    if (pl_store_key_check(*out, &e2))
        return pl_err_set(err, PL_ERR_ARG, "field '%s': %s", name, e2.msg);
    size_t n = strlen(run);
    if (strncmp(*out, run, n) != 0 || (*out)[n] != '/')
        return pl_err_set(err, PL_ERR_ARG, "field '%s' = '%s' is outside the run: keys must start with '%s/'", name,
                          *out, run);
    return PL_OK;
}

static int check_names(const pl_fn_event *e, pl_err *err)
{
    pl_err e2 = {0, ""};
    if (pl_store_key_check(e->run, &e2) || strchr(e->run, '/'))
        return pl_err_set(err, PL_ERR_ARG, "field 'run' = '%s' must be one valid key segment (no '/')", e->run);
    if (!pl_models_find(e->model))
        return pl_err_set(err, PL_ERR_ARG, "field 'model': unknown model '%s' (available: %s)", e->model,
                          pl_models_list());
    if (strcmp(e->loss, "cross_entropy") != 0 && strcmp(e->loss, "nll") != 0)
        return pl_err_set(err, PL_ERR_ARG, "field 'loss' = '%s', expected cross_entropy or nll", e->loss);
    return PL_OK;
}

/* The fields every event shares with its step (all but the batch ones). */
static int parse_common(const cJSON *ev, const cJSON *item, pl_fn_event *e, pl_err *err)
{
    int st = get_str(field(ev, item, "run"), "run", &e->run, err);
    if (!st)
        st = get_i32(field(ev, item, "step"), "step", 0, INT_LIMIT, &e->step, err);
    if (!st)
        st = get_i32(field(ev, item, "rank"), "rank", 0, INT_LIMIT, &e->rank, err);
    if (!st)
        st = get_str(field(ev, item, "model"), "model", &e->model, err);
    if (!st)
        st = get_i32(field(ev, item, "num_classes"), "num_classes", 2, 65536, &e->num_classes, err);
    if (!st)
        st = get_str(field(ev, item, "dataset"), "dataset", &e->dataset, err);
    if (!st)
        st = get_i32(field(ev, item, "input_size"), "input_size", 0, 4096, &e->input_size, err);
    if (!st)
        st = get_str(field(ev, item, "loss"), "loss", &e->loss, err);
    if (!st)
        st = get_int(field(ev, item, "seed"), "seed", 0, INT_LIMIT, &e->seed, err);
    if (!st)
        st = get_i32(field(ev, item, "model_version"), "model_version", 0, INT_LIMIT, &e->model_version, err);
    if (!st)
        st = check_names(e, err);
    if (!st)
        st = get_key(field(ev, item, "model_key"), "model_key", e->run, &e->model_key, err);
    const cJSON *store = field(ev, item, "store");
    if (!st && store && !cJSON_IsNull(store))
        st = get_str(store, "store", &e->store, err);
    return st;
}

int pl_fn_event_parse(const cJSON *ev, pl_fn_event *out, pl_err *err)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(ev))
        return pl_err_set(err, PL_ERR_ARG, "the event must be a JSON object");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(ev, "batch");
    const cJSON *item = cJSON_IsObject(b) ? b : NULL;
    if (item)
        b = cJSON_GetObjectItemCaseSensitive(item, "batch");
    int st = parse_common(ev, item, out, err);
    if (!st)
        st = get_i32(b, item ? "batch.batch" : "batch", 0, INT_LIMIT, &out->batch, err);
    if (!st)
        st = get_key(field(ev, item, "batch_key"), "batch_key", out->run, &out->batch_key, err);
    if (!st)
        st = get_key(field(ev, item, "out_key"), "out_key", out->run, &out->out_key, err);
    if (!st && !strcmp(out->out_key, out->batch_key))
        st = pl_err_set(err, PL_ERR_ARG, "field 'out_key' equals 'batch_key' ('%s'): it would overwrite the batch",
                        out->out_key);
    if (!st && !strcmp(out->out_key, out->model_key))
        st = pl_err_set(err, PL_ERR_ARG, "field 'out_key' equals 'model_key' ('%s'): it would overwrite the model",
                        out->out_key);
    return st;
}

/* The batch indices of a step: "batches" is a count N (0..N-1) or a list. */
static int batch_list(const cJSON *v, int *idx, int *n, pl_err *err)
{
    int64_t count = 0;
    if (cJSON_IsArray(v)) {
        *n = cJSON_GetArraySize(v);
        if (*n < 1 || *n > MAX_BATCHES)
            return pl_err_set(err, PL_ERR_ARG, "field 'input.batches' has %d entries, expected 1..%d", *n,
                              MAX_BATCHES);
        for (int i = 0; i < *n; i++) {
            char name[48];
            snprintf(name, sizeof name, "input.batches[%d]", i);
            const cJSON *it = cJSON_GetArrayItem(v, i);
            if (cJSON_IsObject(it)) /* a step document's entry: {batch, batch_key, out_key} */
                it = cJSON_GetObjectItemCaseSensitive(it, "batch");
            int st = get_i32(it, name, 0, INT_LIMIT, &idx[i], err);
            if (st)
                return st;
        }
        return PL_OK;
    }
    int st = get_int(v, "input.batches", 1, MAX_BATCHES, &count, err);
    *n = (int)count;
    for (int i = 0; !st && i < *n; i++)
        idx[i] = i;
    return st;
}

/* Entry i of the input's batches: {batch, batch_key, out_key} (keys given
 * by the caller, or derived from the layout of docs/serverless.md). */
static cJSON *step_item(const cJSON *in, const pl_fn_event *e, int b)
{
    cJSON *it = cJSON_CreateObject();
    char key[PL_STORE_KEY_MAX + 1];
    cJSON_AddNumberToObject(it, "batch", b);
    cJSON_AddStringToObject(it, "batch_key", pl_peer_key(key, sizeof key, e->run, "batch", e->rank, b));
    snprintf(key, sizeof key, "%s/grads/%d/%d/%d.safetensors", e->run, e->step, e->rank, b);
    cJSON_AddStringToObject(it, "out_key", key);
    (void)in;
    return it;
}

/* Copy the caller's batch_key/out_key of entry `src` (validated) into `it`. */
static int item_keys(const cJSON *src, const pl_fn_event *e, cJSON *it, pl_err *err)
{
    static const char *const names[] = {"batch_key", "out_key"};
    for (int k = 0; cJSON_IsObject(src) && k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, names[k]);
        const char *key = NULL;
        if (!v)
            continue;
        int st = get_key(v, names[k], e->run, &key, err);
        if (st)
            return pl_err_wrap(err, st, "process_input: input.batches");
        cJSON_ReplaceItemInObjectCaseSensitive(it, names[k], cJSON_CreateString(key));
    }
    return PL_OK;
}

static cJSON *step_doc(const cJSON *in, const pl_fn_event *e, const int *idx, int n, pl_err *err)
{
    static const char *const copy[] = {"model", "num_classes", "dataset", "input_size", "loss", "seed", "store"};
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(in, "batches");
    cJSON *doc = cJSON_CreateObject();
    for (size_t i = 0; doc && i < sizeof copy / sizeof copy[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, copy[i]);
        if (v)
            cJSON_AddItemToObject(doc, copy[i], cJSON_Duplicate(v, 1));
    }
    cJSON_AddStringToObject(doc, "run", e->run);
    cJSON_AddNumberToObject(doc, "step", e->step);
    cJSON_AddNumberToObject(doc, "rank", e->rank);
    cJSON_AddNumberToObject(doc, "model_version", e->model_version);
    cJSON_AddStringToObject(doc, "model_key", e->model_key);
    cJSON *arr = cJSON_AddArrayToObject(doc, "batches");
    for (int i = 0; i < n; i++) {
        cJSON *it = step_item(in, e, idx[i]);
        cJSON_AddItemToArray(arr, it);
        if (cJSON_IsArray(src) && item_keys(cJSON_GetArrayItem(src, i), e, it, err)) {
            cJSON_Delete(doc);
            return NULL;
        }
    }
    return doc;
}

int pl_fn_process_input(const cJSON *ev, cJSON **out, pl_err *err)
{
    *out = NULL;
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(ev, "input");
    if (!cJSON_IsObject(in))
        return pl_err_set(err, PL_ERR_ARG, "field 'input' (the execution input) must be a JSON object");
    pl_fn_event e;
    memset(&e, 0, sizeof e);
    int st = parse_common(in, NULL, &e, err);
    if (st)
        return pl_err_wrap(err, st, "process_input: input");
    int n = 0, *idx = malloc(MAX_BATCHES * sizeof *idx);
    if (!idx)
        return pl_err_set(err, PL_ERR_NOMEM, "process_input: out of memory");
    st = batch_list(cJSON_GetObjectItemCaseSensitive(in, "batches"), idx, &n, err);
    if (!st && !(*out = step_doc(in, &e, idx, n, err)))
        st = err && err->status ? err->status : pl_err_set(err, PL_ERR_NOMEM, "process_input: out of memory");
    free(idx);
    return st;
}
