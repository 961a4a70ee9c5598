/* offload.c — the serverless half of a step (docs/serverless.md): publish
 * the peer's current model as a versioned object, run the generated state
 * machine over the step's batch objects with the function platform doing
 * each batch, and add the batch results into the model's gradients in batch
 * order. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "peer/peer_internal.h"
#include "peerless/asl.h"
#include "peerless/aws.h"
#include "peerless/faas.h"
#include "peerless/safetensors.h"

#define FUNCTION_ARN "arn:aws:lambda:local:000000000000:function:"

struct pl_offload {
    const pl_peer_config *cfg;
    pl_store *store;
    pl_asl_machine *machine; /* generated for cfg->batches per step */
    int per_step;
    double last_exec_s;      /* wall time of the last execution */
    unsigned nonce;          /* Step Functions execution names are unique per
                                state machine for 90 days: one per process */
};

int pl_offload_create(const pl_peer_config *cfg, pl_store *store, int per_step, pl_offload **out, pl_err *err)
{
    *out = NULL;
    if (!cfg->faas_url && !cfg->functions_aws)
        return pl_err_set(err, PL_ERR_ARG,
                          "serverless mode needs the function platform's URL (--faas-url) or --functions aws");
    pl_offload *o = calloc(1, sizeof *o);
    if (!o)
        return pl_err_set(err, PL_ERR_NOMEM, "offload: out of memory");
    o->cfg = cfg;
    o->store = store;
    o->per_step = per_step;
    o->nonce = (unsigned)time(NULL) * 2654435761u ^ (unsigned)getpid();
    char arn[512];
    if (cfg->functions_aws && !strncmp(cfg->function_name, "arn:", 4))
        snprintf(arn, sizeof arn, "%s", cfg->function_name);
    else
        snprintf(arn, sizeof arn, FUNCTION_ARN "%s", cfg->function_name);
    pl_asl_gen_config gc = {per_step, arn, cfg->max_concurrency, NULL, NULL, cfg->function_timeout_s};
    char *def = NULL;
    int st = pl_asl_generate(&gc, &def, err);
    if (!st)
        st = pl_asl_parse(def, strlen(def), &o->machine, err);
    free(def);
    if (st) {
        pl_offload_destroy(o);
        return pl_err_wrap(err, st, "serverless state machine");
    }
    *out = o;
    return PL_OK;
}

void pl_offload_destroy(pl_offload *o)
{
    if (!o)
        return;
    pl_asl_destroy(o->machine);
    free(o);
}

/* A function's error body {"errorType", "errorMessage"} into error/cause. */
static void function_error(const char *body, char **error, char **cause)
{
    cJSON *e = cJSON_Parse(body ? body : "");
    const cJSON *t = cJSON_GetObjectItem(e, "errorType"), *m = cJSON_GetObjectItem(e, "errorMessage");
    *error = strdup(cJSON_IsString(t) ? t->valuestring : "States.TaskFailed");
    *cause = strdup(cJSON_IsString(m) ? m->valuestring : (body ? body : ""));
    cJSON_Delete(e);
}

/* Task invoker on AWS Lambda (SigV4-signed Invoke API): the same request
 * code talks to the local platform when --aws-endpoint points at it. */
static int invoke_aws(pl_offload *o, const char *resource, const char *input, char **output, char **error,
                      char **cause)
{
    pl_aws_opts ao;
    memset(&ao, 0, sizeof ao);
    ao.endpoint = o->cfg->aws_endpoint;
    ao.timeout_ms = (long)o->cfg->function_timeout_s * 1000L + 30000;
    /* Locally generated ARNs name a function on the platform. */
    const char *fn = strncmp(resource, FUNCTION_ARN, strlen(FUNCTION_ARN)) ? resource : resource + strlen(FUNCTION_ARN);
    pl_aws_response res;
    pl_err err = {0, ""};
    int st = pl_aws_lambda_invoke(&ao, fn, input, strlen(input), &res, &err);
    if (!st && res.http_status != 200)
        st = pl_err_set(&err, PL_ERR_IO, "Lambda %s: HTTP %ld %s: %s", fn, res.http_status,
                        res.error_type ? res.error_type : "", res.body ? res.body : "");
    if (st) {
        *error = strdup(res.http_status == 429 ? "Lambda.TooManyRequestsException" : "Lambda.ServiceException");
        *cause = strdup(err.msg);
    } else if (res.function_error) {
        function_error(res.body, error, cause);
        st = 1;
    } else {
        *output = res.body;
        res.body = NULL;
    }
    pl_aws_response_free(&res);
    return st ? 1 : 0;
}

/* Task invoker: the ARN's function name on the local platform. Function
 * errors keep their errorType; transport failures look like Lambda's. */
static int invoke(void *ctx, const char *resource, const char *input, char **output, char **error, char **cause)
{
    pl_offload *o = ctx;
    if (o->cfg->functions_aws)
        return invoke_aws(o, resource, input, output, error, cause);
    const char *name = strrchr(resource, ':');
    name = name ? name + 1 : resource;
    pl_faas_result res;
    pl_faas_invoke_opts io;
    memset(&io, 0, sizeof io);
    io.timeout_ms = (long)o->cfg->function_timeout_s * 1000L + 30000;
    pl_err err = {0, ""};
    int st = pl_faas_invoke_ex(o->cfg->faas_url, name, input, strlen(input), &io, &res, &err);
    if (!st && res.http_status != 200) {
        st = PL_ERR_IO;
        pl_err_set(&err, st, "function %s: HTTP %ld: %s", name, res.http_status, res.body ? res.body : "");
    }
    if (st) {
        *error = strdup(res.http_status == 429 ? "Lambda.TooManyRequestsException" : "Lambda.ServiceException");
        *cause = strdup(err.msg);
        pl_faas_result_free(&res);
        return 1;
    }
    if (res.function_error) {
        function_error(res.body, error, cause);
        pl_faas_result_free(&res);
        return 1;
    }
    *output = res.body;
    res.body = NULL;
    pl_faas_result_free(&res);
    return 0;
}

static int publish_model(pl_offload *o, pl_model *m, int step, char *key, size_t keylen, pl_err *err)
{
    pl_st_writer *w = NULL;
    void *blob = NULL;
    size_t len = 0;
    char ver[24];
    snprintf(ver, sizeof ver, "%d", step);
    snprintf(key, keylen, "%s/models/%d/v-%d.safetensors", o->cfg->run, o->cfg->rank, step);
    int st = pl_st_writer_create(&w, err);
    if (!st)
        st = pl_st_writer_add_flat(w, pl_model_params(m), err);
    if (!st)
        st = pl_st_writer_add_flat(w, pl_model_buffers(m), err);
    if (!st)
        st = pl_st_writer_set_metadata(w, "model", o->cfg->model, err);
    if (!st)
        st = pl_st_writer_set_metadata(w, "version", ver, err);
    if (!st)
        st = pl_st_writer_to_memory(w, &blob, &len, err);
    if (!st)
        st = pl_store_put(o->store, key, blob, len, err);
    free(blob);
    pl_st_writer_destroy(w);
    return st;
}

static cJSON *execution_input(pl_offload *o, int step, const char *model_key, int num_classes, int first, int k)
{
    const pl_peer_config *c = o->cfg;
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "run", c->run);
    cJSON_AddNumberToObject(in, "step", step);
    cJSON_AddNumberToObject(in, "rank", c->rank);
    cJSON_AddNumberToObject(in, "model_version", step);
    cJSON_AddStringToObject(in, "model_key", model_key);
    cJSON_AddStringToObject(in, "model", c->model);
    cJSON_AddNumberToObject(in, "num_classes", num_classes);
    cJSON_AddStringToObject(in, "dataset", c->dataset);
    cJSON_AddNumberToObject(in, "input_size", c->input_size);
    cJSON_AddStringToObject(in, "loss", c->loss);
    cJSON_AddNumberToObject(in, "seed", (double)c->seed);
    cJSON_AddStringToObject(in, "store", c->store_url);
    cJSON *bs = cJSON_AddArrayToObject(in, "batches");
    for (int b = first; b < first + k && b < c->batches; b++) {
        char key[PL_STORE_KEY_MAX], out[PL_STORE_KEY_MAX];
        pl_peer_key(key, sizeof key, c->run, "batch", c->rank, b);
        snprintf(out, sizeof out, "%s/grads/%d/%d/%d.safetensors", c->run, step, c->rank, b);
        cJSON *it = cJSON_CreateObject();
        cJSON_AddNumberToObject(it, "batch", b);
        cJSON_AddStringToObject(it, "batch_key", key);
        cJSON_AddStringToObject(it, "out_key", out);
        cJSON_AddItemToArray(bs, it);
    }
    return in;
}

/* Add one batch result object: gradients into grads, buffers * n into bacc. */
static int add_result(pl_offload *o, pl_model *m, const char *key, int step, float *bacc, int *samples,
                      double *loss_sum, pl_err *err)
{
    void *blob = NULL;
    size_t len = 0;
    pl_st_reader *r = NULL;
    int st = pl_store_get(o->store, key, &blob, &len, err);
    if (!st)
        st = pl_st_open_memory(&r, blob, len, key, err);
    const char *ver = st ? NULL : pl_st_metadata_get(r, "model_version");
    if (!st && (!ver || atoi(ver) != step))
        st = pl_err_set(err, PL_ERR_FORMAT, "%s: computed on model version %s, expected %d", key, ver ? ver : "?", step);
    const pl_st_tensor *ns = st ? NULL : pl_st_find(r, "samples"), *ls = st ? NULL : pl_st_find(r, "loss");
    if (!st && (!ns || ns->dtype != PL_ST_I64 || ns->numel != 1 || !ls || ls->numel != 1))
        st = pl_err_set(err, PL_ERR_FORMAT, "%s: 'samples' (I64 [1]) or 'loss' missing", key);
    int64_t n = 0;
    float loss = 0;
    if (!st) {
        memcpy(&n, ns->data, 8);
        pl_st_tensor_to_f32(ls, &loss);
        if (n < 1 || n > (1 << 30))
            st = pl_err_set(err, PL_ERR_FORMAT, "%s: %lld samples", key, (long long)n);
    }
    pl_flat *gr = pl_model_grads(m), *bu = pl_model_buffers(m);
    float *tmp = st ? NULL : malloc((gr->count > bu->count ? gr->count : bu->count) * sizeof(float) + 4);
    if (!st && !tmp)
        st = pl_err_set(err, PL_ERR_NOMEM, "offload: out of memory");
    for (int v = 0; !st && v < gr->nviews; v++) {
        const pl_view *vw = &gr->views[v];
        st = pl_st_read_f32(r, vw->name, &vw->shape, tmp, err);
        float *g = pl_flat_ptr(gr, v);
        for (int64_t i = 0; !st && i < pl_shape_numel(&vw->shape); i++)
            g[i] += tmp[i];
    }
    for (int v = 0; !st && v < bu->nviews; v++) {
        const pl_view *vw = &bu->views[v];
        st = pl_st_read_f32(r, vw->name, &vw->shape, tmp, err);
        float *acc = bacc + vw->offset;
        for (int64_t i = 0; !st && i < pl_shape_numel(&vw->shape); i++)
            acc[i] += tmp[i] * (float)n;
    }
    if (!st) {
        *samples += (int)n;
        *loss_sum += (double)loss * (double)n;
    }
    free(tmp);
    pl_st_close(r);
    free(blob);
    return st;
}

/* Run the step on AWS Step Functions: StartExecution, then DescribeExecution
 * every 0.5 s until it leaves RUNNING (bounded by the tasks' timeouts). On
 * success *output is the execution output (caller frees). */
static int run_on_sfn(pl_offload *o, const char *input, const char *name, char **output, pl_err *err)
{
    pl_aws_opts ao;
    memset(&ao, 0, sizeof ao);
    ao.endpoint = o->cfg->aws_endpoint;
    char *exec_arn = NULL;
    useconds_t poll_us = 20000;
    int st = pl_aws_sfn_start_execution(&ao, o->cfg->state_machine_arn, name, input, &exec_arn, err);
    double deadline = pl_clock_s() + 4.0 * o->cfg->function_timeout_s + 60.0;
    while (!st) {
        pl_aws_execution ex;
        memset(&ex, 0, sizeof ex);
        st = pl_aws_sfn_describe_execution(&ao, exec_arn, &ex, err);
        if (!st && ex.status && strcmp(ex.status, "RUNNING")) {
            if (!strcmp(ex.status, "SUCCEEDED") && ex.output) {
                *output = ex.output;
                ex.output = NULL;
            } else {
                st = pl_err_set(err, PL_ERR_BACKEND, "execution %s %s: %s: %s", exec_arn, ex.status,
                                ex.error ? ex.error : "", ex.cause ? ex.cause : "");
            }
            pl_aws_execution_free(&ex);
            break;
        }
        pl_aws_execution_free(&ex);
        if (!st && pl_clock_s() > deadline)
            st = pl_err_set(err, PL_ERR_IO, "execution %s still running after %.0f s", exec_arn,
                            4.0 * o->cfg->function_timeout_s + 60.0);
        if (!st) /* 20 ms doubling to 0.5 s: short steps finish without a long poll */
            usleep(poll_us);
        poll_us = poll_us * 2 > 500000 ? 500000 : poll_us * 2;
    }
    free(exec_arn);
    return st;
}

int pl_offload_step(pl_offload *o, struct pl_model *m, int step, int first, int k, float *bacc, int *samples,
                    double *loss_sum, pl_err *err)
{
    char model_key[PL_STORE_KEY_MAX];
    *samples = 0;
    *loss_sum = 0;
    pl_model_zero_grad(m);
    memset(bacc, 0, pl_model_buffers(m)->count * sizeof(float));
    int st = publish_model(o, m, step, model_key, sizeof model_key, err);
    if (st)
        return pl_err_wrap(err, st, "publishing model version %d", step);
    cJSON *in = execution_input(o, step, model_key, pl_model_num_classes(m), first, k);
    char *input = cJSON_PrintUnformatted(in);
    cJSON_Delete(in);
    if (!input)
        return pl_err_set(err, PL_ERR_NOMEM, "offload: out of memory");
    char exec_id[128];
    snprintf(exec_id, sizeof exec_id, "%s-r%d-s%d", o->cfg->run, o->cfg->rank, step);
    pl_asl_options ao = {invoke, o, 1.0, 0, exec_id};
    pl_asl_execution *ex = NULL;
    char *sfn_out = NULL;
    double t0 = pl_clock_s();
    char sfn_name[81]; /* AWS: at most 80 characters */
    snprintf(sfn_name, sizeof sfn_name, "%.50s-r%d-s%d-%08x", o->cfg->run, o->cfg->rank, step, o->nonce);
    if (o->cfg->functions_aws && o->cfg->state_machine_arn)
        st = run_on_sfn(o, input, sfn_name, &sfn_out, err);
    else
        st = pl_asl_execute(o->machine, input, &ao, &ex, err);
    o->last_exec_s = pl_clock_s() - t0;
    free(input);
    if (!st && ex && pl_asl_execution_status(ex) != PL_ASL_SUCCEEDED)
        st = pl_err_set(err, PL_ERR_BACKEND, "state machine execution %s failed: %s: %s", exec_id,
                        pl_asl_execution_error(ex) ? pl_asl_execution_error(ex) : "?",
                        pl_asl_execution_cause(ex) ? pl_asl_execution_cause(ex) : "");
    cJSON *outj = st ? NULL : cJSON_Parse(ex ? pl_asl_execution_output(ex) : sfn_out);
    free(sfn_out);
    const cJSON *grads = cJSON_GetObjectItem(outj, "gradients");
    if (!st && !cJSON_IsArray(grads))
        st = pl_err_set(err, PL_ERR_FORMAT, "execution %s: output has no 'gradients' list", exec_id);
    /* Batch order, exactly one result per batch (retries overwrite the same key). */
    const cJSON *g;
    cJSON_ArrayForEach(g, grads)
    {
        if (st)
            break;
        if (!cJSON_IsString(g))
            st = pl_err_set(err, PL_ERR_FORMAT, "execution %s: a gradient key is not a string", exec_id);
        else
            st = add_result(o, m, g->valuestring, step, bacc, samples, loss_sum, err);
    }
    cJSON_Delete(outj);
    pl_asl_execution_destroy(ex);
    return st;
}

double pl_offload_last_seconds(const pl_offload *o) { return o->last_exec_s; }
