/* test_function.c — `peerless function` hosted by the local function
 * platform: compute_gradient against the same step computed in-process,
 * warm reuse and byte-identical retries, invalid events, a missing batch,
 * process_input + a Map-style item, the AWS Lambda client pointed at the
 * platform, and the SigV4 signature of AWS's post-x-www-form-urlencoded
 * test-suite example. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "peer/peer_internal.h"
#include "peerless/aws.h"
#include "peerless/faas.h"
#include "peerless/function.h"
#include "peerless/models.h"
#include "peerless/safetensors.h"
#include "store/sigv4.h"
#include "test.h"

#define MODEL "lenet5"
#define BATCH 1
static pl_store *S;
static pl_faas *P;
static char BASE[64], STORE_URL[1200];

/* The compute_gradient event for batch b with one field replaced (raw JSON
 * value, or NULL to drop it). */
static char *event_for(int b, const char *field, const char *value)
{
    char out[128], bk[128];
    snprintf(bk, sizeof bk, "r1/data/batches/0/%d.safetensors", b);
    snprintf(out, sizeof out, "r1/grads/0/0/%d.safetensors", b);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "action", "compute_gradient");
    cJSON_AddStringToObject(e, "run", "r1");
    cJSON_AddNumberToObject(e, "step", 0);
    cJSON_AddNumberToObject(e, "rank", 0);
    cJSON_AddNumberToObject(e, "batch", b);
    cJSON_AddStringToObject(e, "model", MODEL);
    cJSON_AddNumberToObject(e, "num_classes", 10);
    cJSON_AddStringToObject(e, "dataset", "synthetic");
    cJSON_AddNumberToObject(e, "input_size", 0);
    cJSON_AddStringToObject(e, "loss", "cross_entropy");
    cJSON_AddNumberToObject(e, "seed", 42);
    cJSON_AddStringToObject(e, "model_key", "r1/models/0/v-0.safetensors");
    cJSON_AddNumberToObject(e, "model_version", 0);
    cJSON_AddStringToObject(e, "batch_key", bk);
    cJSON_AddStringToObject(e, "out_key", out);
    cJSON_AddStringToObject(e, "store", STORE_URL);
    if (field) {
        cJSON_DeleteItemFromObject(e, field);
        if (value)
            cJSON_AddItemToObject(e, field, cJSON_Parse(value));
    }
    char *s = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    return s;
}

/* Invoke through the platform; returns the parsed answer (caller deletes)
 * and whether the function reported an error. */
static cJSON *invoke(const char *event, int *fn_error)
{
    char *resp = NULL, *ferr = NULL;
    size_t len = 0;
    pl_err err = {0, ""};
    int st = pl_faas_invoke(BASE, "grad", event, strlen(event), &resp, &len, &ferr, 60000, &err);
    PL_CHECK(st == PL_OK, "invoke: %s", err.msg);
    *fn_error = ferr != NULL;
    cJSON *j = cJSON_Parse(resp ? resp : "");
    free(resp);
    free(ferr);
    return j;
}

static int setup_store(void)
{
    snprintf(STORE_URL, sizeof STORE_URL, "file://%s/fnstore", pl_test_tmpdir());
    pl_err err = {0, ""};
    pl_split_config sc = {"synthetic", NULL, "r1", 2, 3, 1, 0.1};
    int st = pl_store_open(STORE_URL, NULL, &S, &err);
    if (!st)
        st = pl_split_write(S, &sc, NULL, 0, &err);
    pl_model *m = NULL;
    pl_st_writer *w = NULL;
    void *blob = NULL;
    size_t len = 0;
    if (!st)
        st = pl_models_build(MODEL, pl_backend_by_name("fast"), 1, 32, 32, 10, 7, &m, &err);
    if (!st)
        st = pl_st_writer_create(&w, &err);
    if (!st)
        st = pl_st_writer_add_flat(w, pl_model_params(m), &err);
    if (!st)
        st = pl_st_writer_add_flat(w, pl_model_buffers(m), &err);
    if (!st)
        st = pl_st_writer_set_metadata(w, "model", MODEL, &err);
    if (!st)
        st = pl_st_writer_set_metadata(w, "version", "0", &err);
    if (!st)
        st = pl_st_writer_to_memory(w, &blob, &len, &err);
    if (!st)
        st = pl_store_put(S, "r1/models/0/v-0.safetensors", blob, len, &err);
    free(blob);
    pl_st_writer_destroy(w);
    pl_model_destroy(m);
    PL_CHECK(st == PL_OK, "store setup: %s", err.msg);
    return st;
}

/* The reference: the same step in-process, as docs/serverless.md says. */
static pl_model *reference(int b, float *loss, int *n, pl_err *err)
{
    char key[128];
    pl_dataset *ds = NULL;
    pl_loader *l = NULL;
    pl_model *m = NULL;
    pl_loader_config lc;
    memset(&lc, 0, sizeof lc);
    snprintf(key, sizeof key, "r1/data/batches/0/%d.safetensors", b);
    int st = pl_shard_load(S, key, &ds, err);
    if (!st)
        st = pl_transform_defaults(&lc.tf, "synthetic", PL_SPLIT_TEST, err);
    lc.tf.resize_h = lc.tf.resize_w = 32; /* lenet5's default input size */
    *n = ds ? (int)pl_dataset_get_info(ds).n : 0;
    lc.batch_size = *n;
    uint32_t *idx = malloc(sizeof *idx * (size_t)(*n + 1));
    float *x = pl_alloc(sizeof *x * (size_t)(*n * 1024 + 1));
    int32_t *y = malloc(sizeof *y * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++)
        idx[i] = (uint32_t)i;
    int count = 0;
    if (!st)
        st = pl_loader_create(ds, idx, (size_t)*n, &lc, &l, err);
    if (!st)
        st = pl_loader_next(l, x, y, NULL, &count);
    if (!st)
        st = pl_models_build(MODEL, pl_backend_by_name("fast"), 1, 32, 32, 10, 0, &m, err);
    pl_flat *flats[2] = {m ? pl_model_params(m) : NULL, m ? pl_model_buffers(m) : NULL};
    void *blob = NULL;
    size_t len = 0;
    pl_st_reader *r = NULL;
    if (!st)
        st = pl_store_get(S, "r1/models/0/v-0.safetensors", &blob, &len, err);
    if (!st)
        st = pl_st_open_memory(&r, blob, len, "model", err);
    if (!st)
        st = pl_st_load_flats(r, flats, 2, 1, NULL, err);
    if (!st) {
        pl_model_zero_grad(m);
        pl_model_seed_dropout(m, 42, (0ull << 32) ^ (0ull << 20) ^ (uint64_t)b);
        st = pl_model_forward(m, x, count, 32, 32, PL_MODE_TRAIN, err);
    }
    if (!st)
        st = pl_model_loss_scaled(m, y, PL_LOSS_CROSS_ENTROPY, (float)count, loss, err);
    if (!st)
        st = pl_model_backward(m, err);
    pl_st_close(r);
    free(blob);
    free(idx);
    pl_free(x);
    free(y);
    pl_loader_destroy(l);
    pl_dataset_destroy(ds);
    if (st) {
        pl_model_destroy(m);
        return NULL;
    }
    return m;
}

static void compare_object(const char *key, pl_model *ref, float loss, int n)
{
    void *blob = NULL;
    size_t len = 0;
    pl_st_reader *r = NULL;
    pl_err err = {0, ""};
    int st = pl_store_get(S, key, &blob, &len, &err);
    if (!st)
        st = pl_st_open_memory(&r, blob, len, key, &err);
    PL_CHECK(st == PL_OK, "result object %s: %s", key, err.msg);
    if (st) {
        free(blob);
        return;
    }
    pl_flat *g = pl_model_grads(ref);
    int exact = 1, missing = 0;
    for (int i = 0; i < g->nviews; i++) {
        const pl_st_tensor *t = pl_st_find(r, g->views[i].name);
        size_t bytes = (size_t)pl_shape_numel(&g->views[i].shape) * sizeof(float);
        if (!t || t->nbytes != bytes)
            missing++;
        else if (memcmp(t->data, pl_flat_ptr(g, i), bytes))
            exact = 0;
    }
    PL_CHECK(!missing, "%d gradients missing or misshapen in %s", missing, key);
    PL_CHECK(exact, "gradients of %s differ from the in-process step (same threads: must be bit-identical)", key);
    const pl_st_tensor *tl = pl_st_find(r, "loss"), *ts = pl_st_find(r, "samples");
    float fl = 0;
    int64_t ns = 0;
    if (tl && tl->dtype == PL_ST_F32 && tl->numel == 1)
        memcpy(&fl, tl->data, 4);
    if (ts && ts->dtype == PL_ST_I64 && ts->numel == 1)
        memcpy(&ns, ts->data, 8);
    PL_CHECK(fl == loss, "loss %.9g, in-process %.9g", fl, loss);
    PL_CHECK(ns == n, "samples %lld, expected %d", (long long)ns, n);
    const char *v = pl_st_metadata_get(r, "model_version");
    PL_CHECK(v && !strcmp(v, "0"), "metadata model_version %s", v ? v : "missing");
    pl_st_close(r);
    free(blob);
}

/* Does the JSON text of `a` contain `phrase`? */
static int has(const cJSON *a, const char *phrase)
{
    char *t = cJSON_PrintUnformatted(a);
    int r = t && strstr(t, phrase);
    free(t);
    return r;
}

static char *get_object(const char *key, size_t *len)
{
    void *d = NULL;
    pl_store_get(S, key, &d, len, NULL);
    return d;
}

static int last_cold(void)
{
    pl_faas_report r;
    size_t n = pl_faas_report_count(P);
    return n && pl_faas_reports(P, n - 1, &r, 1) == 1 ? r.cold : -1;
}

static void test_compute(void)
{
    pl_err err = {0, ""};
    float loss = 0;
    int n = 0, fe = 0;
    pl_model *ref = reference(BATCH, &loss, &n, &err);
    PL_CHECK(ref != NULL, "reference step: %s", err.msg);
    char *ev = event_for(BATCH, NULL, NULL);
    cJSON *a = invoke(ev, &fe);
    PL_CHECK(!fe && !has(a, "errorType"), "compute_gradient failed");
    PL_CHECK(last_cold() == 1, "first call is cold");
    const char *g = cJSON_GetStringValue(cJSON_GetObjectItem(a, "gradient"));
    PL_CHECK(g && !strcmp(g, "r1/grads/0/0/1.safetensors"), "gradient key %s", g ? g : "missing");
    PL_CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "samples")) == n, "samples in the answer");
    PL_CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "loss")), loss, 1e-6, "loss in the answer");
    PL_CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "model_version")) == 0, "model_version in the answer");
    if (ref)
        compare_object("r1/grads/0/0/1.safetensors", ref, loss, n);
    size_t l1 = 0, l2 = 0;
    char *o1 = get_object("r1/grads/0/0/1.safetensors", &l1);
    cJSON_Delete(a);
    a = invoke(ev, &fe);
    PL_CHECK(!fe && last_cold() == 0, "second identical call: warm (cold=%d), no error", last_cold());
    char *o2 = get_object("r1/grads/0/0/1.safetensors", &l2);
    PL_CHECK(o1 && o2 && l1 == l2 && !memcmp(o1, o2, l1), "a retried event writes a byte-identical object");
    free(o1);
    free(o2);
    free(ev);
    cJSON_Delete(a);
    pl_model_destroy(ref);
}

static void expect_error(const char *field, const char *value, const char *etype, const char *phrase)
{
    char *ev = event_for(0, field, value);
    int fe = 0;
    cJSON *a = invoke(ev, &fe);
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(a, "errorType"));
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(a, "errorMessage"));
    PL_CHECK(fe && t && !strcmp(t, etype) && m && strstr(m, phrase),
             "%s=%s: expected %s naming '%s', got %s: %s", field, value ? value : "(missing)", etype, phrase,
             t ? t : "-", m ? m : "-");
    cJSON_Delete(a);
    free(ev);
}

static void test_invalid(void)
{
    expect_error("step", NULL, "InvalidEvent", "'step' is missing");
    expect_error("batch", "-1", "InvalidEvent", "'batch'");
    expect_error("rank", "\"0\"", "InvalidEvent", "'rank' must be an integer");
    expect_error("seed", "1.5", "InvalidEvent", "'seed'");
    expect_error("step", "2147483648", "InvalidEvent", "'step'");
    expect_error("model", "\"lenet6\"", "InvalidEvent", "unknown model 'lenet6'");
    expect_error("loss", "\"mse\"", "InvalidEvent", "'loss'");
    expect_error("dataset", "\"\"", "InvalidEvent", "'dataset'");
    expect_error("out_key", "\"other/grads/x.safetensors\"", "InvalidEvent", "'out_key'");
    expect_error("batch_key", "\"r1/../x\"", "InvalidEvent", "'batch_key'");
    expect_error("model_key", "\"r1/models/0/v-0.safetensors/\"", "InvalidEvent", "'model_key'");
    expect_error("num_classes", "12", "InvalidEvent", "'num_classes'");
    expect_error("model_version", "3", "InvalidEvent", "'model_version'");
    expect_error("action", "\"train\"", "InvalidEvent", "'action'");
    expect_error("batch_key", "\"r1/data/batches/0/99.safetensors\"", "ObjectNotFound",
                 "r1/data/batches/0/99.safetensors");
    expect_error("model_key", "\"r1/models/0/v-9.safetensors\"", "ObjectNotFound", "v-9");
    int fe = 0;
    cJSON *a = invoke("[1,2]", &fe);
    PL_CHECK(fe && has(a, "JSON object"), "a non-object event is rejected");
    cJSON_Delete(a);
}

/* process_input, then the Map's item event for batch 1: the same object. */
static void test_process_input(void)
{
    char in[1600];
    snprintf(in, sizeof in,
             "{\"action\":\"process_input\",\"input\":{\"run\":\"r1\",\"step\":0,\"rank\":0,\"model\":\"" MODEL
             "\",\"num_classes\":10,\"dataset\":\"synthetic\",\"input_size\":0,\"loss\":\"cross_entropy\","
             "\"seed\":42,\"model_key\":\"r1/models/0/v-0.safetensors\",\"model_version\":0,\"store\":\"%s\","
             "\"batches\":[0,{\"batch\":1,\"batch_key\":\"r1/data/batches/0/1.safetensors\","
             "\"out_key\":\"r1/grads/0/0/1.safetensors\"},2]}}",
             STORE_URL);
    int fe = 0;
    cJSON *doc = invoke(in, &fe);
    cJSON *bs = cJSON_GetObjectItem(doc, "batches");
    PL_CHECK(!fe && cJSON_GetArraySize(bs) == 3, "process_input: 3 batches");
    PL_CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "num_classes")) == 10 &&
                 cJSON_GetObjectItem(doc, "store") && cJSON_GetObjectItem(doc, "seed"),
             "process_input: the step's fields at the top of the step document");
    cJSON *item = cJSON_GetArrayItem(bs, 1);
    PL_CHECK(item && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(item, "out_key")), "r1/grads/0/0/1.safetensors"),
             "process_input: item out_key");
    size_t l1 = 0, l2 = 0;
    char *o1 = get_object("r1/grads/0/0/1.safetensors", &l1);
    pl_store_delete(S, "r1/grads/0/0/1.safetensors", NULL);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "action", "compute_gradient");
    /* The generated Map's ItemSelector: the step's fields and the item's. */
    const char *copy[] = {"run", "step", "rank", "model_version", "model_key", "model",
                          "num_classes", "dataset", "input_size", "loss", "seed", "store"};
    for (int i = 0; i < 12; i++)
        cJSON_AddItemToObject(ev, copy[i], cJSON_Duplicate(cJSON_GetObjectItem(doc, copy[i]), 1));
    const char *from_item[] = {"batch", "batch_key", "out_key"};
    for (int i = 0; i < 3; i++)
        cJSON_AddItemToObject(ev, from_item[i], cJSON_Duplicate(cJSON_GetObjectItem(item, from_item[i]), 1));
    char *s = cJSON_PrintUnformatted(ev);
    cJSON *a = invoke(s, &fe);
    char *o2 = get_object("r1/grads/0/0/1.safetensors", &l2);
    PL_CHECK(!fe && o1 && o2 && l1 == l2 && !memcmp(o1, o2, l1), "Map item event gives the same object");
    cJSON_Delete(a);
    a = invoke("{\"action\":\"process_input\",\"input\":{\"run\":\"r1\"}}", &fe);
    PL_CHECK(fe && has(a, "'step' is missing"), "process_input validates its input");
    free(o1);
    free(o2);
    free(s);
    cJSON_Delete(a);
    cJSON_Delete(ev);
    cJSON_Delete(doc);
}

static void test_aws_client(void)
{
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    pl_aws_opts o = {"us-east-1", BASE, 60000};
    pl_aws_response r;
    pl_err err = {0, ""};
    char *ev = event_for(2, NULL, NULL);
    int st = pl_aws_lambda_invoke(&o, "arn:aws:lambda:us-east-1:123456789012:function:grad", ev, strlen(ev), &r, &err);
    PL_CHECK(st == PL_OK && r.http_status == 200 && !r.function_error && strstr(r.body, "r1/grads/0/0/2.safetensors"),
             "AWS client via the local platform: %d %ld %s %s", st, r.http_status, r.body ? r.body : "", err.msg);
    pl_aws_response_free(&r);
    st = pl_aws_lambda_invoke(&o, "nosuchfn", "{}", 2, &r, &err);
    PL_CHECK(st == PL_OK && r.http_status == 404 && r.error_type && !strcmp(r.error_type, "ResourceNotFoundException"),
             "AWS client: unknown function is 404 ResourceNotFoundException");
    pl_aws_response_free(&r);
    free(ev);
}

/* AWS SigV4 test suite, post-x-www-form-urlencoded. */
static void test_sigv4_post(void)
{
    char hash[65];
    pl_sigv4_sha256_hex("Param1=value1", 13, hash);
    pl_sigv4_pair h[] = {{"Content-Type", "application/x-www-form-urlencoded"},
                         {"Host", "example.amazonaws.com"},
                         {"X-Amz-Date", "20150830T123600Z"}};
    pl_sigv4_request req = {"POST", "/", NULL, 0, h, 3, hash};
    pl_sigv4_key key = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service"};
    pl_sigv4_result r;
    memset(&r, 0, sizeof r);
    int st = pl_sigv4_sign(&req, &key, "20150830T123600Z", &r, NULL);
    PL_CHECK(!strcmp(hash, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"), "payload hash");
    PL_CHECK(st == PL_OK && !strcmp(r.signature, "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
             "post-x-www-form-urlencoded signature %s", r.signature);
    pl_sigv4_result_free(&r);
}

static void test_threads_env(void)
{
    setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769", 1);
    unsetenv("PEERLESS_THREADS");
    PL_CHECK(pl_fn_threads_from_env() == 1, "1769 MB is one vCPU");
    setenv("PEERLESS_THREADS", "3", 1);
    PL_CHECK(pl_fn_threads_from_env() == 3, "PEERLESS_THREADS wins");
    unsetenv("PEERLESS_THREADS");
    unsetenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
}

int main(void)
{
    const char *bin = getenv("PEERLESS");
    test_sigv4_post();
    test_threads_env();
    if (!bin) {
        PL_CHECK(0, "PEERLESS is not set (run through ctest)");
        PL_TEST_MAIN();
    }
    pl_backend_set_threads(1);
    if (setup_store())
        PL_TEST_MAIN();
    pl_err err = {0, ""};
    pl_faas_config cfg = {0};
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "env PEERLESS_THREADS=1 %s function", bin);
    pl_faas_function fn = {"grad", cmd, 2048, 60, 2, 60, NULL, NULL};
    int st = pl_faas_create(&cfg, &P, &err);
    if (!st)
        st = pl_faas_add_function(P, &fn, &err);
    PL_CHECK(st == PL_OK, "platform: %s", err.msg);
    if (!st) {
        snprintf(BASE, sizeof BASE, "http://127.0.0.1:%d", pl_faas_port(P));
        test_compute();
        test_invalid();
        test_process_input();
        test_aws_client();
    }
    pl_faas_destroy(P);
    pl_store_close(S);
    PL_TEST_MAIN();
}
