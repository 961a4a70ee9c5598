/* function.c — the gradient function's handler (docs/serverless.md): load
 * the published model (cached across warm calls) and the batch, one
 * training-mode forward + backward, write the result object atomically. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faas/function_impl.h"
#include "peer/peer_internal.h"
#include "peerless/models.h"
#include "peerless/safetensors.h"
#include "peerless/store.h"

struct pl_fn {
    const pl_backend *be;
    char *default_store;
    pl_store *store;     /* the last store used; reused while the URL matches */
    char *store_url;     /* the URL it was opened from (event or default) */
    pl_model *m;         /* cached model, built for (name, k, c, h, w) */
    char *m_name, *m_key; /* m_key NULL: parameters not loaded (or stale) */
    int m_version, m_k, m_c, m_h, m_w;
    float *buf0;         /* the published buffers of m_key */
    float *x;            /* [n, c, h, w] transformed batch */
    int32_t *y;          /* [n] */
    size_t x_cap, y_cap;
    int loads;
};

/* The call being served: the event and where failures are classified. */
typedef struct fn_call {
    pl_fn *f;
    pl_fn_event e;
    pl_dataset *batch;
    int n, c, h, w;
    float loss;
    const char *etype;
} fn_call;

static int fail(fn_call *c, const char *etype, int st)
{
    c->etype = etype;
    return st;
}

/* Error type of a store read failure. */
static const char *read_etype(int st)
{
    return st == PL_ERR_NOTFOUND ? PL_FN_NOT_FOUND
           : st == PL_ERR_FORMAT || st == PL_ERR_SHAPE ? PL_FN_BAD_OBJECT
           : st == PL_ERR_ARG ? PL_FN_INVALID_EVENT : PL_FN_STORE_ERROR;
}

static int open_store(pl_fn *f, const char *url, pl_err *err)
{
    if (f->store && !strcmp(f->store_url, url))
        return PL_OK;
    pl_store_close(f->store);
    free(f->store_url);
    f->store = NULL;
    if (!(f->store_url = strdup(url)))
        return pl_err_set(err, PL_ERR_NOMEM, "function: out of memory");
    int st = pl_store_open(url, NULL, &f->store, err);
    if (st) {
        free(f->store_url);
        f->store_url = NULL;
        return pl_err_wrap(err, st, "store '%s'", url);
    }
    return PL_OK;
}

int pl_fn_create(const pl_fn_config *cfg, pl_fn **out, pl_err *err)
{
    *out = NULL;
    pl_fn *f = calloc(1, sizeof *f);
    if (!f)
        return pl_err_set(err, PL_ERR_NOMEM, "function: out of memory");
    const char *be = cfg && cfg->backend ? cfg->backend : "fast";
    int st = PL_OK;
    if (!(f->be = pl_backend_by_name(be)))
        st = pl_err_set(err, PL_ERR_ARG, "function: unknown backend '%s' (expected fast or ref)", be);
    if (!st && cfg && cfg->store_url && cfg->store_url[0]) {
        if (!(f->default_store = strdup(cfg->store_url)))
            st = pl_err_set(err, PL_ERR_NOMEM, "function: out of memory");
        else
            st = open_store(f, f->default_store, err);
    }
    if (st) {
        pl_fn_destroy(f);
        return st;
    }
    *out = f;
    return PL_OK;
}

void pl_fn_destroy(pl_fn *f)
{
    if (!f)
        return;
    pl_store_close(f->store);
    free(f->store_url);
    free(f->default_store);
    pl_model_destroy(f->m);
    free(f->m_name);
    free(f->m_key);
    free(f->buf0);
    pl_free(f->x);
    free(f->y);
    free(f);
}

int pl_fn_model_loads(const pl_fn *f)
{
    return f->loads;
}

/* The model's eval transform, as the peer applies it to batch objects:
 * the dataset's normalisation, gray->RGB for RGB models, resize to
 * input_size or the model's default size. */
static int model_transform(const pl_fn_event *e, const pl_dataset *ds, pl_transform *tf, pl_err *err)
{
    pl_dataset_info di = pl_dataset_get_info(ds);
    int st = pl_models_transform(pl_models_find(e->model), e->dataset, PL_SPLIT_TEST, di.c, di.h, di.w, e->input_size,
                                 tf, err);
    return st ? pl_err_wrap(err, st, "field 'dataset'") : PL_OK;
}

static int grow(fn_call *c, pl_err *err)
{
    pl_fn *f = c->f;
    size_t nx = (size_t)c->n * (size_t)c->c * (size_t)c->h * (size_t)c->w;
    if (nx > f->x_cap) {
        pl_free(f->x);
        f->x_cap = 0;
        if (!(f->x = pl_alloc(nx * sizeof *f->x)))
            return pl_err_set(err, PL_ERR_NOMEM, "function: out of memory for a batch of %zu floats", nx);
        f->x_cap = nx;
    }
    if ((size_t)c->n > f->y_cap) {
        free(f->y);
        f->y_cap = 0;
        if (!(f->y = malloc((size_t)c->n * sizeof *f->y)))
            return pl_err_set(err, PL_ERR_NOMEM, "function: out of memory for %d targets", c->n);
        f->y_cap = (size_t)c->n;
    }
    return PL_OK;
}

/* batch_key -> transformed f->x [n, c, h, w] and f->y [n]. */
static int load_batch(fn_call *c, pl_err *err)
{
    int st = pl_shard_load(c->f->store, c->e.batch_key, &c->batch, err);
    if (st)
        return fail(c, read_etype(st), pl_err_wrap(err, st, "batch_key"));
    pl_dataset_info di = pl_dataset_get_info(c->batch);
    if (di.num_classes != c->e.num_classes)
        return fail(c, PL_FN_INVALID_EVENT,
                    pl_err_set(err, PL_ERR_ARG, "field 'num_classes' is %d but batch object '%s' has %d classes",
                               c->e.num_classes, c->e.batch_key, di.num_classes));
    pl_loader_config lc;
    memset(&lc, 0, sizeof lc);
    if ((st = model_transform(&c->e, c->batch, &lc.tf, err)))
        return fail(c, PL_FN_INVALID_EVENT, st);
    c->n = lc.batch_size = (int)di.n;
    uint32_t *idx = malloc((size_t)di.n * sizeof *idx);
    if (!idx)
        return fail(c, PL_FN_COMPUTE_ERROR, pl_err_set(err, PL_ERR_NOMEM, "function: out of memory"));
    for (int i = 0; i < c->n; i++)
        idx[i] = (uint32_t)i;
    pl_loader *l = NULL;
    st = pl_loader_create(c->batch, idx, (size_t)c->n, &lc, &l, err);
    free(idx);
    if (!st) {
        pl_loader_out_shape(l, &c->c, &c->h, &c->w);
        st = grow(c, err);
    }
    int count = 0;
    if (!st)
        st = pl_loader_next(l, c->f->x, c->f->y, NULL, &count);
    if (!st && count != c->n)
        st = pl_err_set(err, PL_ERR_FORMAT, "batch '%s': loader gave %d of %d samples", c->e.batch_key, count, c->n);
    pl_loader_destroy(l);
    return st ? fail(c, PL_FN_BAD_OBJECT, st) : PL_OK;
}

/* Check the published object's metadata against the event (when present). */
static int check_model_meta(fn_call *c, const pl_st_reader *r, pl_err *err)
{
    const char *model = pl_st_metadata_get(r, "model"), *ver = pl_st_metadata_get(r, "version");
    if (model && strcmp(model, c->e.model) != 0)
        return pl_err_set(err, PL_ERR_ARG, "field 'model' is '%s' but model object '%s' holds a '%s'", c->e.model,
                          c->e.model_key, model);
    char want[24];
    snprintf(want, sizeof want, "%d", c->e.model_version);
    if (ver && strcmp(ver, want) != 0)
        return pl_err_set(err, PL_ERR_ARG, "field 'model_version' is %d but model object '%s' has version %s",
                          c->e.model_version, c->e.model_key, ver);
    return PL_OK;
}

/* (Re)build the cached model when its architecture or input shape changes;
 * the same model keeps its workspaces and backend plans. */
static int ensure_model(fn_call *c, pl_err *err)
{
    pl_fn *f = c->f;
    if (f->m && !strcmp(f->m_name, c->e.model) && f->m_k == c->e.num_classes && f->m_c == c->c && f->m_h == c->h &&
        f->m_w == c->w)
        return PL_OK;
    pl_model_destroy(f->m);
    f->m = NULL;
    free(f->m_name);
    free(f->m_key);
    f->m_name = f->m_key = NULL;
    free(f->buf0);
    f->buf0 = NULL;
    int st = pl_models_build(c->e.model, f->be, c->c, c->h, c->w, c->e.num_classes, 0, &f->m, err);
    if (st)
        return st;
    f->m_name = strdup(c->e.model);
    f->buf0 = malloc((pl_model_buffers(f->m)->count + 1) * sizeof *f->buf0);
    if (!f->m_name || !f->buf0)
        return pl_err_set(err, PL_ERR_NOMEM, "function: out of memory for model %s", c->e.model);
    f->m_k = c->e.num_classes, f->m_c = c->c, f->m_h = c->h, f->m_w = c->w;
    return PL_OK;
}

static int load_params(fn_call *c, pl_err *err)
{
    pl_fn *f = c->f;
    void *blob = NULL;
    size_t len = 0;
    pl_st_reader *r = NULL;
    free(f->m_key);
    f->m_key = NULL;
    int st = pl_store_get(f->store, c->e.model_key, &blob, &len, err);
    if (st) {
        free(blob);
        return fail(c, read_etype(st), pl_err_wrap(err, st, "model_key"));
    }
    st = pl_st_open_memory(&r, blob, len, c->e.model_key, err);
    const char *etype = PL_FN_BAD_OBJECT;
    if (!st && (st = check_model_meta(c, r, err)))
        etype = PL_FN_INVALID_EVENT;
    pl_flat *flats[2] = {pl_model_params(f->m), pl_model_buffers(f->m)};
    if (!st && (st = pl_st_load_flats(r, flats, 2, 1, NULL, err)))
        st = pl_err_wrap(err, st, "model object '%s' (model %s, %d classes)", c->e.model_key, c->e.model,
                         c->e.num_classes);
    pl_st_close(r);
    free(blob);
    if (st)
        return fail(c, etype, st);
    memcpy(f->buf0, flats[1]->data, flats[1]->count * sizeof *f->buf0);
    if (!(f->m_key = strdup(c->e.model_key)))
        return fail(c, PL_FN_COMPUTE_ERROR, pl_err_set(err, PL_ERR_NOMEM, "function: out of memory"));
    f->m_version = c->e.model_version;
    f->loads++;
    return PL_OK;
}

static int load_model(fn_call *c, pl_err *err)
{
    pl_fn *f = c->f;
    int st = ensure_model(c, err);
    if (st)
        return fail(c, st == PL_ERR_NOMEM ? PL_FN_COMPUTE_ERROR : PL_FN_INVALID_EVENT, st);
    if (f->m_key && !strcmp(f->m_key, c->e.model_key) && f->m_version == c->e.model_version)
        return PL_OK;
    return load_params(c, err);
}

/* One training-mode step from the published buffers (docs/serverless.md 3). */
static int compute(fn_call *c, pl_err *err)
{
    pl_fn *f = c->f;
    pl_flat *bu = pl_model_buffers(f->m);
    pl_loss_kind kind;
    int st = pl_loss_parse(c->e.loss, &kind, err);
    memcpy(bu->data, f->buf0, bu->count * sizeof *f->buf0);
    pl_model_zero_grad(f->m);
    uint64_t stream = ((uint64_t)c->e.step << 32) ^ ((uint64_t)c->e.rank << 20) ^ (uint64_t)c->e.batch;
    pl_model_seed_dropout(f->m, (uint64_t)c->e.seed, stream);
    if (!st)
        st = pl_model_forward(f->m, f->x, c->n, c->h, c->w, PL_MODE_TRAIN, err);
    if (!st)
        st = pl_model_loss_scaled(f->m, f->y, kind, (float)c->n, &c->loss, err);
    if (!st)
        st = pl_model_backward(f->m, err);
    return st ? fail(c, PL_FN_COMPUTE_ERROR, st) : PL_OK;
}

static int write_result(fn_call *c, pl_err *err)
{
    pl_fn *f = c->f;
    pl_st_writer *w = NULL;
    void *blob = NULL;
    size_t len = 0;
    int64_t one = 1, samples = c->n;
    char ver[24];
    snprintf(ver, sizeof ver, "%d", c->e.model_version);
    int st = pl_st_writer_create(&w, err);
    if (!st)
        st = pl_st_writer_add_flat(w, pl_model_grads(f->m), err);
    if (!st)
        st = pl_st_writer_add_flat(w, pl_model_buffers(f->m), err);
    if (!st)
        st = pl_st_writer_add(w, "loss", PL_ST_F32, 1, &one, &c->loss, err);
    if (!st)
        st = pl_st_writer_add(w, "samples", PL_ST_I64, 1, &one, &samples, err);
    if (!st)
        st = pl_st_writer_set_metadata(w, "model_version", ver, err);
    if (!st)
        st = pl_st_writer_set_metadata(w, "model", c->e.model, err);
    if (!st)
        st = pl_st_writer_to_memory(w, &blob, &len, err);
    pl_st_writer_destroy(w);
    if (st)
        return fail(c, PL_FN_COMPUTE_ERROR, st);
    st = pl_store_put(f->store, c->e.out_key, blob, len, err);
    free(blob);
    return st ? fail(c, PL_FN_STORE_ERROR, pl_err_wrap(err, st, "out_key")) : PL_OK;
}

static char *answer(const fn_call *c)
{
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, "gradient", c->e.out_key) && cJSON_AddNumberToObject(o, "samples", c->n) &&
        cJSON_AddNumberToObject(o, "loss", c->loss) &&
        cJSON_AddNumberToObject(o, "model_version", c->e.model_version))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Fault injection for tests: when PEERLESS_FAULT_CRASH_ONCE names a file
 * that exists, the first invocation to delete it crashes (exit 3) before
 * computing — as a function environment dying mid-invocation would. */
static void maybe_crash(void)
{
    const char *f = getenv("PEERLESS_FAULT_CRASH_ONCE");
    if (f && *f && unlink(f) == 0)
        _exit(3);
}

static int compute_gradient(pl_fn *f, const cJSON *ev, char **response, const char **etype, pl_err *err)
{
    maybe_crash();
    fn_call c;
    memset(&c, 0, sizeof c);
    c.f = f;
    c.etype = PL_FN_INVALID_EVENT;
    int st = pl_fn_event_parse(ev, &c.e, err);
    const char *url = c.e.store ? c.e.store : f->default_store;
    if (!st && !url)
        st = pl_err_set(err, PL_ERR_ARG, "field 'store' is missing and the function has no PEERLESS_STORE");
    if (!st && (st = open_store(f, url, err)))
        c.etype = st == PL_ERR_ARG ? PL_FN_INVALID_EVENT : PL_FN_STORE_ERROR;
    if (!st)
        st = load_batch(&c, err);
    if (!st)
        st = load_model(&c, err);
    if (!st)
        st = compute(&c, err);
    if (!st)
        st = write_result(&c, err);
    if (!st && !(*response = answer(&c)))
        st = fail(&c, PL_FN_COMPUTE_ERROR, pl_err_set(err, PL_ERR_NOMEM, "function: out of memory"));
    pl_dataset_destroy(c.batch);
    if (st && f->m && st != PL_ERR_ARG && st != PL_ERR_NOTFOUND) {
        free(f->m_key); /* a failed compute may leave the cached state stale */
        f->m_key = NULL;
    }
    *etype = c.etype;
    return st;
}

static int process_input(pl_fn *f, const cJSON *ev, char **response, const char **etype, pl_err *err)
{
    (void)f;
    cJSON *doc = NULL;
    *etype = PL_FN_INVALID_EVENT;
    int st = pl_fn_process_input(ev, &doc, err);
    if (!st && !(*response = cJSON_PrintUnformatted(doc)))
        st = pl_err_set(err, PL_ERR_NOMEM, "process_input: out of memory");
    cJSON_Delete(doc);
    return st;
}

static const struct {
    const char *name;
    int (*run)(pl_fn *f, const cJSON *ev, char **response, const char **etype, pl_err *err);
} actions[] = {
    {"compute_gradient", compute_gradient},
    {"process_input", process_input},
};

int pl_fn_handle(pl_fn *f, const char *event, size_t len, char **response, const char **error_type, pl_err *err)
{
    *response = NULL;
    *error_type = PL_FN_INVALID_EVENT;
    cJSON *ev = cJSON_ParseWithLength(event, len);
    if (!ev)
        return pl_err_set(err, PL_ERR_ARG, "the event is not valid JSON");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(ev, "action");
    int st = PL_OK;
    if (!cJSON_IsObject(ev))
        st = pl_err_set(err, PL_ERR_ARG, "the event must be a JSON object");
    else if (!cJSON_IsString(a))
        st = pl_err_set(err, PL_ERR_ARG, "field 'action' is %s, expected compute_gradient or process_input",
                        a ? "not a string" : "missing");
    else {
        size_t i = 0;
        while (i < sizeof actions / sizeof actions[0] && strcmp(actions[i].name, a->valuestring))
            i++;
        if (i == sizeof actions / sizeof actions[0])
            st = pl_err_set(err, PL_ERR_ARG, "field 'action' = '%.64s', expected compute_gradient or process_input",
                            a->valuestring);
        else
            st = actions[i].run(f, ev, response, error_type, err);
    }
    cJSON_Delete(ev);
    return st;
}

int pl_fn_threads_from_env(void)
{
    const char *t = getenv("PEERLESS_THREADS"), *mem = getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    long v = t && *t ? strtol(t, NULL, 10) : 0;
    if (v >= 1 && v <= 1024)
        return (int)v;
    long mb = mem && *mem ? strtol(mem, NULL, 10) : 0;
    if (mb <= 0)
        return 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN), n = (mb + 1768) / 1769;
    return (int)(cpus > 0 && n > cpus ? cpus : n);
}
