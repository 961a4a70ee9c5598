/* init.c — `peerless init`: build a model, initialise it from a seed and
 * write its full state dict (parameters + buffers) as safetensors, loadable
 * with torchvision's load_state_dict(strict=True). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "peerless/backend.h"
#include "peerless/models.h"
#include "peerless/safetensors.h"

typedef struct init_opts {
    const char *model, *out;
    int num_classes, input_size, channels;
    uint64_t seed;
} init_opts;

/* Input shape: --input-size / --channels, else the model's default size
 * (28, the datasets' native side, for models without one) and 3 channels
 * for RGB models, 1 otherwise. */
static void input_shape(const init_opts *o, const pl_model_info *mi, int *c, int *hw)
{
    *hw = o->input_size ? o->input_size : mi->default_size ? mi->default_size : 28;
    *c = o->channels ? o->channels : mi->rgb ? 3 : 1;
}

/* Length of the module path of a view name ("layer1.0.bn1" of
 * "layer1.0.bn1.weight"). */
static size_t module_len(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot ? (size_t)(dot - name) : 0;
}

static int same_module(const char *a, const char *b)
{
    size_t n = module_len(a);
    return n == module_len(b) && strncmp(a, b, n) == 0;
}

/* Add view i of f: F32 borrowed from f, I64 converted into i64[i]. */
static int add_view(pl_st_writer *w, const pl_flat *f, int i, int64_t *i64, pl_err *err)
{
    const pl_view *v = &f->views[i];
    const float *p = pl_flat_ptr(f, i);
    if (v->kind == PL_VIEW_F32)
        return pl_st_writer_add(w, v->name, PL_ST_F32, v->shape.ndim, v->shape.dim, p, err);
    if (pl_shape_numel(&v->shape) != 1)
        return pl_err_set(err, PL_ERR_UNSUPPORTED, "%s: only scalar int64 buffers are supported", v->name);
    i64[i] = (int64_t)p[0];
    return pl_st_writer_add(w, v->name, PL_ST_I64, v->shape.ndim, v->shape.dim, &i64[i], err);
}

/* Parameters and buffers in PyTorch's state_dict() order: each module's
 * parameters, then its buffers. Buffers are in module order too, so one
 * cursor walks them. i64 [buffers->nviews] holds the converted int64s and
 * must outlive the write. */
static int add_state_dict(pl_st_writer *w, const pl_flat *params, const pl_flat *buffers, int64_t *i64,
                          pl_err *err)
{
    int b = 0, st = PL_OK;
    for (int i = 0; !st && i < params->nviews; i++) {
        const char *name = params->views[i].name;
        st = add_view(w, params, i, NULL, err);
        if (i + 1 < params->nviews && same_module(name, params->views[i + 1].name))
            continue;
        while (!st && b < buffers->nviews && same_module(name, buffers->views[b].name))
            st = add_view(w, buffers, b++, i64, err);
    }
    while (!st && b < buffers->nviews)
        st = add_view(w, buffers, b++, i64, err);
    return st;
}

static int write_state(const init_opts *o, pl_model *m, int c, int hw, pl_err *err)
{
    pl_st_writer *w = NULL;
    char buf[64];
    const pl_flat *buffers = pl_model_buffers(m);
    int64_t *i64 = calloc((size_t)buffers->nviews + 1, sizeof *i64);
    if (!i64)
        return pl_err_set(err, PL_ERR_NOMEM, "init: out of memory");
    int st = pl_st_writer_create(&w, err);
    if (!st)
        st = add_state_dict(w, pl_model_params(m), buffers, i64, err);
    if (!st)
        st = pl_st_writer_set_metadata(w, "model", o->model, err);
    snprintf(buf, sizeof buf, "%d", o->num_classes);
    if (!st)
        st = pl_st_writer_set_metadata(w, "num_classes", buf, err);
    snprintf(buf, sizeof buf, "%dx%dx%d", c, hw, hw);
    if (!st)
        st = pl_st_writer_set_metadata(w, "input", buf, err);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)o->seed);
    if (!st)
        st = pl_st_writer_set_metadata(w, "seed", buf, err);
    if (!st)
        st = pl_st_writer_write(w, o->out, err);
    pl_st_writer_destroy(w);
    free(i64);
    return st;
}

static int run_init(const init_opts *o, pl_err *err)
{
    if (!o->model || !o->out)
        return pl_err_set(err, PL_ERR_ARG, "--model and --out are required (see peerless init --help)");
    const pl_model_info *mi = pl_models_find(o->model);
    if (!mi)
        return pl_err_set(err, PL_ERR_NOTFOUND, "unknown model '%s' (available: %s)", o->model, pl_models_list());
    int c, hw;
    input_shape(o, mi, &c, &hw);
    pl_model *m = NULL;
    int st = pl_models_build(o->model, pl_backend_by_name("ref"), c, hw, hw, o->num_classes, o->seed, &m, err);
    if (!st)
        st = write_state(o, m, c, hw, err);
    if (!st)
        fprintf(stderr, "peerless init: %s (%zu parameters, input %dx%dx%d, %d classes, seed %llu) -> %s\n",
                o->model, pl_model_params(m)->count, c, hw, hw, o->num_classes, (unsigned long long)o->seed,
                o->out);
    pl_model_destroy(m);
    return st;
}

int pl_cmd_init(int argc, char **argv)
{
    init_opts o = {NULL, NULL, 10, 0, 0, 42};
    pl_flag flags[] = {
        {"model", PL_FLAG_STR, &o.model, 0, -1, "NAME", "model to build (required; see peerless models)", 0},
        {"num-classes", PL_FLAG_INT, &o.num_classes, 2, 1 << 20, "K", "output classes (default 10)", 0},
        {"input-size", PL_FLAG_INT, &o.input_size, 0, 4096, "N", "input side (default: the model's, else 28)", 0},
        {"channels", PL_FLAG_INT, &o.channels, 0, 4096, "C", "input channels (default: 3 for RGB models, else 1)", 0},
        {"seed", PL_FLAG_U64, &o.seed, 0, -1, "N", "initialisation seed (default 42)", 0},
        {"out", PL_FLAG_STR, &o.out, 0, -1, "FILE", "output safetensors file (required)", 0},
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]);
    int help = 0;
    pl_err err = {0, ""};
    int st = pl_args_parse("init", flags, nflags, argc, argv, &help, &err);
    if (!st && help) {
        pl_args_usage("init", "Initialise a model from a seed and write its parameters and buffers (safetensors).",
                      flags, nflags);
        return 0;
    }
    if (!st)
        st = run_init(&o, &err);
    if (st) {
        fprintf(stderr, "peerless init: %s\n", err.msg[0] ? err.msg : pl_status_str(st));
        return 1;
    }
    return 0;
}
