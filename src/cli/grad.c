/* grad.c — `peerless grad`: one forward and backward of a checkpoint on one
 * batch in training mode (batch-norm batch statistics, dropout off), writing
 * the loss, every parameter's gradient and the updated batch-norm running
 * statistics. With --sgd-steps S it instead takes S SGD steps on the batch
 * and writes the per-step losses, the updated parameters and buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "peerless/backend.h"
#include "peerless/models.h"
#include "peerless/optim.h"
#include "peerless/safetensors.h"

typedef struct grad_opts {
    const char *model, *checkpoint, *batch, *out, *backend, *loss;
    int threads, num_classes, sgd_steps;
    double lr, momentum;
} grad_opts;

typedef struct grad_job {
    grad_opts o;
    pl_st_reader *ckpt, *batch;
    const pl_backend *be;
    pl_loss_kind loss;
    float *x;       /* [n, c, h, w] */
    int32_t *y;     /* [n] */
    int n, c, h, w;
    pl_model *m;
    float *losses;  /* [max(1, sgd_steps)] */
} grad_job;

static void job_free(grad_job *j)
{
    pl_st_close(j->ckpt);
    pl_st_close(j->batch);
    pl_free(j->x);
    free(j->y);
    pl_model_destroy(j->m);
    free(j->losses);
}

/* input: float32 [n, c, h, w] -> j->x and the shape. */
static int read_input(grad_job *j, pl_err *err)
{
    const pl_st_tensor *t = pl_st_find(j->batch, "input");
    if (!t)
        return pl_err_set(err, PL_ERR_NOTFOUND, "batch %s: no tensor 'input' (expected float32 [N, C, H, W])",
                          j->o.batch);
    if (t->dtype != PL_ST_F32 || t->ndim != 4)
        return pl_err_set(err, PL_ERR_FORMAT, "batch %s: 'input' is %s with %d dims, expected F32 [N, C, H, W]",
                          j->o.batch, pl_st_dtype_name(t->dtype), t->ndim);
    for (int d = 0; d < 4; d++)
        if (t->shape[d] < 1 || t->shape[d] > (1 << 20))
            return pl_err_set(err, PL_ERR_SHAPE, "batch %s: 'input' dim %d is %lld, expected 1..%d", j->o.batch,
                              d, (long long)t->shape[d], 1 << 20);
    j->n = (int)t->shape[0], j->c = (int)t->shape[1], j->h = (int)t->shape[2], j->w = (int)t->shape[3];
    if (!(j->x = pl_alloc(t->nbytes)))
        return pl_err_set(err, PL_ERR_NOMEM, "batch %s: out of memory for 'input'", j->o.batch);
    memcpy(j->x, t->data, t->nbytes);
    return PL_OK;
}

/* target: int64 or int32 [n] -> j->y (range checked once K is known). */
static int read_target(grad_job *j, pl_err *err)
{
    const pl_st_tensor *t = pl_st_find(j->batch, "target");
    if (!t)
        return pl_err_set(err, PL_ERR_NOTFOUND, "batch %s: no tensor 'target' (expected int64 [%d])", j->o.batch,
                          j->n);
    if ((t->dtype != PL_ST_I64 && t->dtype != PL_ST_I32) || t->ndim != 1 || t->shape[0] != j->n)
        return pl_err_set(err, PL_ERR_FORMAT, "batch %s: 'target' is %s with %d dims (%lld entries), expected I64 or I32 [%d]",
                          j->o.batch, pl_st_dtype_name(t->dtype), t->ndim, t->ndim ? (long long)t->shape[0] : 1LL,
                          j->n);
    if (!(j->y = malloc((size_t)j->n * sizeof *j->y)))
        return pl_err_set(err, PL_ERR_NOMEM, "batch %s: out of memory for 'target'", j->o.batch);
    for (int i = 0; i < j->n; i++) {
        int64_t v;
        if (t->dtype == PL_ST_I64) {
            memcpy(&v, (const char *)t->data + 8 * (size_t)i, 8);
        } else {
            int32_t v32;
            memcpy(&v32, (const char *)t->data + 4 * (size_t)i, 4);
            v = v32;
        }
        j->y[i] = v < 0 || v > INT32_MAX ? -1 : (int32_t)v;
        if (j->y[i] < 0)
            return pl_err_set(err, PL_ERR_ARG, "batch %s: target[%d] = %lld is negative or too large", j->o.batch,
                              i, (long long)v);
    }
    return PL_OK;
}

/* The checkpoint's class count: dim 0 of the output module's weight. */
static int checkpoint_classes(grad_job *j, int *k, pl_err *err)
{
    char name[128];
    snprintf(name, sizeof name, "%s.weight", pl_models_find(j->o.model)->head);
    const pl_st_tensor *t = pl_st_find(j->ckpt, name);
    if (!t || t->ndim < 1 || t->shape[0] < 2 || t->shape[0] > (1 << 20))
        return pl_err_set(err, PL_ERR_FORMAT,
                          "checkpoint %s: %s '%s' (the output layer of %s), cannot tell the number of classes",
                          j->o.checkpoint, t ? "unusable tensor" : "no tensor", name, j->o.model);
    *k = (int)t->shape[0];
    return PL_OK;
}

static int build_model(grad_job *j, pl_err *err)
{
    int k = j->o.num_classes, st = PL_OK;
    if (!k && (st = checkpoint_classes(j, &k, err)))
        return st;
    for (int i = 0; i < j->n; i++)
        if (j->y[i] >= k)
            return pl_err_set(err, PL_ERR_ARG, "batch %s: target[%d] = %d outside [0, %d) (classes of the checkpoint)",
                              j->o.batch, i, j->y[i], k);
    st = pl_models_build(j->o.model, j->be, j->c, j->h, j->w, k, 0, &j->m, err);
    if (st)
        return st;
    pl_flat *flats[2] = {pl_model_params(j->m), pl_model_buffers(j->m)};
    st = pl_st_load_flats(j->ckpt, flats, 2, 1, NULL, err);
    if (st)
        return pl_err_wrap(err, st, "checkpoint %s (model %s, %d classes, input %dx%dx%d)", j->o.checkpoint,
                           j->o.model, k, j->c, j->h, j->w);
    return PL_OK;
}

/* One training-mode forward + loss + backward into fresh gradients. */
static int forward_backward(grad_job *j, float *loss, pl_err *err)
{
    pl_model_zero_grad(j->m);
    int st = pl_model_forward(j->m, j->x, j->n, j->h, j->w, PL_MODE_BN_BATCH, err);
    if (!st)
        st = pl_model_loss(j->m, j->y, j->loss, loss, err);
    if (!st)
        st = pl_model_backward(j->m, err);
    return st;
}

static int sgd_steps(grad_job *j, pl_err *err)
{
    pl_optim *opt = NULL;
    pl_optim_config cfg = pl_optim_defaults(PL_OPTIM_SGD);
    cfg.lr = j->o.lr;
    cfg.momentum = j->o.momentum;
    pl_flat *p = pl_model_params(j->m), *g = pl_model_grads(j->m);
    int st = pl_optim_create(&opt, &cfg, p->count, err);
    for (int s = 0; !st && s < j->o.sgd_steps; s++) {
        st = forward_backward(j, &j->losses[s], err);
        if (!st)
            st = pl_optim_step(opt, p->data, g->data, p->count, err);
        if (st)
            st = pl_err_wrap(err, st, "SGD step %d", s + 1);
    }
    pl_optim_destroy(opt);
    return st;
}

static int write_result(grad_job *j, pl_err *err)
{
    pl_st_writer *w = NULL;
    int64_t nl = j->o.sgd_steps ? j->o.sgd_steps : 1;
    int st = pl_st_writer_create(&w, err);
    if (!st)
        st = pl_st_writer_add(w, "loss", PL_ST_F32, 1, &nl, j->losses, err);
    if (!st)
        st = pl_st_writer_add_flat(w, j->o.sgd_steps ? pl_model_params(j->m) : pl_model_grads(j->m), err);
    if (!st)
        st = pl_st_writer_add_flat(w, pl_model_buffers(j->m), err);
    if (!st)
        st = pl_st_writer_set_metadata(w, "model", j->o.model, err);
    if (!st)
        st = pl_st_writer_set_metadata(w, "content", j->o.sgd_steps ? "sgd-params" : "gradients", err);
    if (!st)
        st = pl_st_writer_write(w, j->o.out, err);
    pl_st_writer_destroy(w);
    return st;
}

static int run_grad(grad_job *j, pl_err *err)
{
    grad_opts *o = &j->o;
    if (!o->model || !o->checkpoint || !o->batch || !o->out)
        return pl_err_set(err, PL_ERR_ARG, "--model, --checkpoint, --batch and --out are required (see peerless grad --help)");
    if (!pl_models_find(o->model))
        return pl_err_set(err, PL_ERR_NOTFOUND, "unknown model '%s' (available: %s)", o->model, pl_models_list());
    if (!(j->be = pl_backend_by_name(o->backend)))
        return pl_err_set(err, PL_ERR_ARG, "unknown backend '%s' (expected fast or ref)", o->backend);
    int st = pl_loss_parse(o->loss, &j->loss, err);
    if (!st && !(j->losses = calloc((size_t)(o->sgd_steps ? o->sgd_steps : 1), sizeof *j->losses)))
        st = pl_err_set(err, PL_ERR_NOMEM, "grad: out of memory");
    if (!st)
        st = pl_st_open(&j->batch, o->batch, err);
    if (!st)
        st = read_input(j, err);
    if (!st)
        st = read_target(j, err);
    if (!st)
        st = pl_st_open(&j->ckpt, o->checkpoint, err);
    if (!st)
        st = build_model(j, err);
    if (!st)
        st = o->sgd_steps ? sgd_steps(j, err) : forward_backward(j, &j->losses[0], err);
    if (!st)
        st = write_result(j, err);
    return st;
}

int pl_cmd_grad(int argc, char **argv)
{
    grad_job j;
    memset(&j, 0, sizeof j);
    grad_opts *o = &j.o;
    o->backend = "fast";
    o->loss = "cross_entropy";
    o->lr = 0.01;
    pl_flag flags[] = {
        {"model", PL_FLAG_STR, &o->model, 0, -1, "NAME", "model the checkpoint belongs to (required)", 0},
        {"checkpoint", PL_FLAG_STR, &o->checkpoint, 0, -1, "FILE", "parameters + buffers (safetensors; strict)", 0},
        {"batch", PL_FLAG_STR, &o->batch, 0, -1, "FILE", "safetensors with 'input' F32 [N,C,H,W], 'target' I64/I32 [N]", 0},
        {"out", PL_FLAG_STR, &o->out, 0, -1, "FILE", "output: 'loss' [1], parameter gradients, buffers", 0},
        {"num-classes", PL_FLAG_INT, &o->num_classes, 0, 1 << 20, "K", "classes (default: from the checkpoint)", 0},
        {"loss", PL_FLAG_STR, &o->loss, 0, -1, "NAME", "cross_entropy (default) or nll", 0},
        {"threads", PL_FLAG_INT, &o->threads, 0, 1024, "N", "compute threads (default: all cores)", 0},
        {"backend", PL_FLAG_STR, &o->backend, 0, -1, "NAME", "compute backend: fast (default) or ref", 0},
        {"sgd-steps", PL_FLAG_INT, &o->sgd_steps, 0, 1000, "S", "take S SGD steps on the batch; write 'loss' [S], params, buffers", 0},
        {"lr", PL_FLAG_DOUBLE, &o->lr, 0, 10, "X", "SGD learning rate for --sgd-steps (default 0.01)", 0},
        {"momentum", PL_FLAG_DOUBLE, &o->momentum, 0, 1, "X", "SGD momentum for --sgd-steps (default 0)", 0},
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]);
    int help = 0;
    pl_err err = {0, ""};
    int st = pl_args_parse("grad", flags, nflags, argc, argv, &help, &err);
    if (!st && help) {
        pl_args_usage("grad", "One training-mode forward/backward (dropout off, batch-norm batch statistics).",
                      flags, nflags);
        return 0;
    }
    if (!st) {
        pl_backend_set_threads(o->threads);
        st = run_grad(&j, &err);
    }
    job_free(&j);
    if (st) {
        fprintf(stderr, "peerless grad: %s\n", err.msg[0] ? err.msg : pl_status_str(st));
        return 1;
    }
    return 0;
}
