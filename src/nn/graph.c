/* graph.c — the model graph: builders, flat parameter vectors, per-shape
 * workspaces, and the forward / loss / backward driver. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_internal.h"

/* ---- building ---- */

pl_model *pl_model_create(const pl_backend *be, int c, int h, int w)
{
    pl_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->be = be;
    m->c = c;
    m->h = h;
    m->w = w;
    pl_flat_init(&m->params);
    pl_flat_init(&m->grads);
    pl_flat_init(&m->buffers);
    pl_rng_seed(&m->drop_rng, 0, 0x64726f70);
    if (c <= 0 || h <= 0 || w <= 0) {
        m->status = pl_err_set(&m->err, PL_ERR_ARG, "model input shape %dx%dx%d must be positive", c, h, w);
        return m;
    }
    pl_node *in = NULL;
    m->nodes = calloc(16, sizeof *m->nodes);
    if (!m->nodes) {
        free(m);
        return NULL;
    }
    m->cap = 16;
    in = &m->nodes[m->nnodes++];
    in->ops = &pl_layer_input;
    in->p[0] = in->p[1] = in->b[0] = in->b[1] = in->b[2] = -1;
    in->build_shape = pl_shape4(1, c, h, w);
    return m;
}

static void ws_release(pl_model *m, pl_ws *ws)
{
    if (!ws->st)
        return;
    for (int i = 0; i < m->nnodes; i++) {
        pl_nstate *s = &ws->st[i];
        if (s->priv && m->nodes[i].ops->release)
            m->nodes[i].ops->release(s->priv);
        if (i > 0 && !m->nodes[i].ops->alias)
            pl_free(s->y);
    }
    for (int b = 0; b < ws->nbufs; b++)
        pl_free(ws->bufs[b]);
    free(ws->bufs);
    free(ws->bufcap);
    free(ws->busy);
    free(ws->st);
    pl_free(ws->loss_buf);
    pl_free(ws->loss_grad);
    memset(ws, 0, sizeof *ws);
}

static void ws_release_all(pl_model *m)
{
    for (int i = 0; i < PL_WS_MAX; i++)
        ws_release(m, &m->ws[i]);
    m->cur = NULL;
}

void pl_model_destroy(pl_model *m)
{
    if (!m)
        return;
    ws_release_all(m);
    for (int i = 0; i < m->nnodes; i++)
        free(m->nodes[i].name);
    free(m->nodes);
    pl_flat_free(&m->params);
    pl_flat_free(&m->grads);
    pl_flat_free(&m->buffers);
    free(m);
}

pl_conv_opts pl_conv(int k, int stride, int pad, int groups, int bias)
{
    pl_conv_opts o = {k, k, stride, stride, pad, pad, 1, 1, groups, bias};
    return o;
}

static int add_view(pl_model *m, pl_flat *f, const char *prefix, const char *leaf, pl_shape s,
                    pl_view_kind kind)
{
    char name[256];
    int n = snprintf(name, sizeof name, "%s.%s", prefix, leaf);
    if (n < 0 || (size_t)n >= sizeof name)
        return m->status = pl_err_set(&m->err, PL_ERR_ARG, "parameter name '%s.%s' too long", prefix, leaf);
    int idx = pl_flat_add(f, name, s, kind, &m->err);
    if (idx < 0)
        m->status = idx;
    return idx;
}

/* Append a node; infer its build shape. Returns the id or the sticky error. */
static int add_node(pl_model *m, const pl_layer_ops *ops, const char *name, const int *in, int nin,
                    pl_layer_cfg cfg)
{
    if (m->status)
        return m->status;
    if (m->finished)
        return m->status = pl_err_set(&m->err, PL_ERR_ARG, "%s: model already finished", ops->kind);
    if (nin < 1 || nin > 8)
        return m->status = pl_err_set(&m->err, PL_ERR_ARG, "%s: %d inputs (1..8 supported)", ops->kind, nin);
    for (int i = 0; i < nin; i++)
        if (in[i] < 0 || in[i] >= m->nnodes)
            return m->status = pl_err_set(&m->err, PL_ERR_ARG, "%s%s%s: input node %d does not exist",
                                          ops->kind, name ? " " : "", name ? name : "", in[i]);
    if (m->nnodes == m->cap) {
        pl_node *nn = realloc(m->nodes, (size_t)m->cap * 2 * sizeof *nn);
        if (!nn)
            return m->status = pl_err_set(&m->err, PL_ERR_NOMEM, "model: out of memory adding %s", ops->kind);
        m->nodes = nn;
        m->cap *= 2;
    }
    pl_node *nd = &m->nodes[m->nnodes];
    memset(nd, 0, sizeof *nd);
    nd->ops = ops;
    nd->nin = nin;
    memcpy(nd->in, in, (size_t)nin * sizeof *in);
    nd->cfg = cfg;
    nd->p[0] = nd->p[1] = nd->b[0] = nd->b[1] = nd->b[2] = -1;
    if (name && !(nd->name = strdup(name)))
        return m->status = pl_err_set(&m->err, PL_ERR_NOMEM, "model: out of memory");
    pl_shape ins[8];
    for (int i = 0; i < nin; i++)
        ins[i] = m->nodes[in[i]].build_shape;
    int st = ops->infer(m, nd, ins, &nd->build_shape, &m->err);
    if (st) {
        free(nd->name);
        return m->status = pl_err_wrap(&m->err, st, "%s%s%s", ops->kind, name ? " " : "", name ? name : "");
    }
    return m->nnodes++;
}

int pl_nn_conv2d(pl_model *m, const char *name, int x, int c_out, pl_conv_opts o)
{
    pl_layer_cfg cfg = {.conv = {c_out, o}};
    if (!o.stride_h) cfg.conv.o.stride_h = 1;
    if (!o.stride_w) cfg.conv.o.stride_w = 1;
    if (!o.dil_h) cfg.conv.o.dil_h = 1;
    if (!o.dil_w) cfg.conv.o.dil_w = 1;
    if (!o.groups) cfg.conv.o.groups = 1;
    int id = add_node(m, &pl_layer_conv2d, name, &x, 1, cfg);
    if (id < 0)
        return id;
    pl_node *nd = &m->nodes[id];
    int c_in = (int)m->nodes[x].build_shape.dim[1];
    nd->p[0] = add_view(m, &m->params, name, "weight",
                        pl_shape4(c_out, c_in / cfg.conv.o.groups, o.kh, o.kw), PL_VIEW_F32);
    if (o.bias)
        nd->p[1] = add_view(m, &m->params, name, "bias", pl_shape1(c_out), PL_VIEW_F32);
    return m->status ? m->status : id;
}

int pl_nn_batchnorm2d(pl_model *m, const char *name, int x, float eps, float momentum)
{
    pl_layer_cfg cfg = {.bn = {eps, momentum}};
    int id = add_node(m, &pl_layer_bn, name, &x, 1, cfg);
    if (id < 0)
        return id;
    pl_node *nd = &m->nodes[id];
    int64_t c = nd->build_shape.dim[1];
    nd->p[0] = add_view(m, &m->params, name, "weight", pl_shape1(c), PL_VIEW_F32);
    nd->p[1] = add_view(m, &m->params, name, "bias", pl_shape1(c), PL_VIEW_F32);
    nd->b[0] = add_view(m, &m->buffers, name, "running_mean", pl_shape1(c), PL_VIEW_F32);
    nd->b[1] = add_view(m, &m->buffers, name, "running_var", pl_shape1(c), PL_VIEW_F32);
    pl_shape scalar = {0, {0, 0, 0, 0}};
    nd->b[2] = add_view(m, &m->buffers, name, "num_batches_tracked", scalar, PL_VIEW_I64);
    return m->status ? m->status : id;
}

int pl_nn_linear(pl_model *m, const char *name, int x, int out_features, int bias)
{
    pl_layer_cfg cfg = {.linear = {out_features, bias}};
    int id = add_node(m, &pl_layer_linear, name, &x, 1, cfg);
    if (id < 0)
        return id;
    pl_node *nd = &m->nodes[id];
    int64_t in_f = m->nodes[x].build_shape.dim[1];
    nd->p[0] = add_view(m, &m->params, name, "weight", pl_shape2(out_features, in_f), PL_VIEW_F32);
    if (bias)
        nd->p[1] = add_view(m, &m->params, name, "bias", pl_shape1(out_features), PL_VIEW_F32);
    return m->status ? m->status : id;
}

int pl_nn_act(pl_model *m, int x, pl_act kind)
{
    pl_layer_cfg cfg = {.act = {kind}};
    return add_node(m, &pl_layer_act, NULL, &x, 1, cfg);
}

int pl_nn_maxpool2d(pl_model *m, int x, int k, int stride, int pad, int ceil_mode)
{
    pl_layer_cfg cfg = {.pool = {k, stride ? stride : k, pad, ceil_mode, 1}};
    return add_node(m, &pl_layer_maxpool, NULL, &x, 1, cfg);
}

int pl_nn_avgpool2d(pl_model *m, int x, int k, int stride, int pad, int ceil_mode, int count_include_pad)
{
    pl_layer_cfg cfg = {.pool = {k, stride ? stride : k, pad, ceil_mode, count_include_pad}};
    return add_node(m, &pl_layer_avgpool, NULL, &x, 1, cfg);
}

int pl_nn_adaptive_avgpool2d(pl_model *m, int x, int h_out, int w_out)
{
    pl_layer_cfg cfg = {.adapool = {h_out, w_out}};
    return add_node(m, &pl_layer_adapool, NULL, &x, 1, cfg);
}

int pl_nn_dropout(pl_model *m, int x, float p)
{
    pl_layer_cfg cfg = {.dropout = {p}};
    return add_node(m, &pl_layer_dropout, NULL, &x, 1, cfg);
}

int pl_nn_flatten(pl_model *m, int x)
{
    pl_layer_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    return add_node(m, &pl_layer_flatten, NULL, &x, 1, cfg);
}

int pl_nn_concat(pl_model *m, const int *xs, int n)
{
    pl_layer_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    return add_node(m, &pl_layer_concat, NULL, xs, n, cfg);
}

int pl_nn_add(pl_model *m, int a, int b)
{
    int in[2] = {a, b};
    pl_layer_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    return add_node(m, &pl_layer_add, NULL, in, 2, cfg);
}

int pl_nn_chmul(pl_model *m, int x, int s)
{
    int in[2] = {x, s};
    pl_layer_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    return add_node(m, &pl_layer_chmul, NULL, in, 2, cfg);
}

int pl_nn_logsoftmax(pl_model *m, int x)
{
    pl_layer_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    return add_node(m, &pl_layer_logsoftmax, NULL, &x, 1, cfg);
}

int pl_model_finish(pl_model *m, pl_err *err)
{
    if (!m)
        return pl_err_set(err, PL_ERR_NOMEM, "model: out of memory");
    if (m->status) {
        if (err)
            *err = m->err;
        return m->status;
    }
    const pl_shape *out = &m->nodes[m->nnodes - 1].build_shape;
    if (m->nnodes < 2 || out->ndim != 2)
        return pl_err_set(err, PL_ERR_SHAPE, "model: the last layer must produce [N, classes], got %d dims",
                          out->ndim);
    for (int i = 0; i < m->params.nviews; i++) {
        const pl_view *v = &m->params.views[i];
        int st = pl_flat_add(&m->grads, v->name, v->shape, v->kind, err);
        if (st < 0)
            return st;
    }
    int st = pl_flat_alloc(&m->params, err);
    if (!st)
        st = pl_flat_alloc(&m->grads, err);
    if (!st)
        st = pl_flat_alloc(&m->buffers, err);
    if (st)
        return st;
    m->finished = 1;
    pl_model_init(m, 0);
    return PL_OK;
}

void pl_model_init(pl_model *m, uint64_t seed)
{
    pl_rng r;
    pl_rng_seed(&r, seed, 0x696e6974);
    pl_flat_zero(&m->buffers);
    for (int i = 1; i < m->nnodes; i++)
        if (m->nodes[i].ops->init)
            m->nodes[i].ops->init(m, &m->nodes[i], &r);
    pl_model_seed_dropout(m, seed, 0x64726f70);
}

void pl_model_seed_dropout(pl_model *m, uint64_t seed, uint64_t stream) { pl_rng_seed(&m->drop_rng, seed, stream); }

/* ---- accessors ---- */

pl_flat *pl_model_params(pl_model *m) { return &m->params; }
pl_flat *pl_model_grads(pl_model *m) { return &m->grads; }
pl_flat *pl_model_buffers(pl_model *m) { return &m->buffers; }
const pl_backend *pl_model_backend(const pl_model *m) { return m->be; }

void pl_model_set_backend(pl_model *m, const pl_backend *be)
{
    ws_release_all(m);
    m->be = be;
}

int pl_model_num_classes(const pl_model *m) { return (int)m->nodes[m->nnodes - 1].build_shape.dim[1]; }

void pl_model_input_shape(const pl_model *m, int *c, int *h, int *w)
{
    *c = m->c;
    *h = m->h;
    *w = m->w;
}

float *pl_node_param(pl_model *m, const pl_node *nd, int i)
{
    return nd->p[i] < 0 ? NULL : pl_flat_ptr(&m->params, nd->p[i]);
}

float *pl_node_grad(pl_model *m, const pl_node *nd, int i)
{
    return nd->p[i] < 0 ? NULL : pl_flat_ptr(&m->grads, nd->p[i]);
}

float *pl_node_buffer(pl_model *m, const pl_node *nd, int i)
{
    return nd->b[i] < 0 ? NULL : pl_flat_ptr(&m->buffers, nd->b[i]);
}

/* ---- workspaces ---- */

static int ws_prepare(pl_model *m, pl_ws *ws, pl_shape in, pl_err *err)
{
    ws->in = in;
    ws->st = calloc((size_t)m->nnodes, sizeof *ws->st);
    if (!ws->st)
        return pl_err_set(err, PL_ERR_NOMEM, "model: out of memory for workspace");
    ws->st[0].shape = in;
    for (int i = 1; i < m->nnodes; i++) {
        pl_node *nd = &m->nodes[i];
        pl_nstate *s = &ws->st[i];
        pl_shape ins[8];
        for (int j = 0; j < nd->nin; j++)
            ins[j] = ws->st[nd->in[j]].shape;
        int st = nd->ops->infer(m, nd, ins, &s->shape, err);
        if (st) {
            char buf[64];
            return pl_err_wrap(err, st, "input %s: layer %d (%s%s%s)", pl_shape_str(&in, buf, sizeof buf), i,
                               nd->ops->kind, nd->name ? " " : "", nd->name ? nd->name : "");
        }
        if (!nd->ops->alias) {
            s->y = pl_alloc((size_t)pl_shape_numel(&s->shape) * sizeof(float));
            if (!s->y)
                return pl_err_set(err, PL_ERR_NOMEM, "model: out of memory for activations of layer %d", i);
        }
        if (nd->ops->prepare) {
            st = nd->ops->prepare(m, nd, ws, err);
            if (st)
                return pl_err_wrap(err, st, "layer %d (%s)", i, nd->ops->kind);
        }
    }
    const pl_shape *out = &ws->st[m->nnodes - 1].shape;
    size_t nk = (size_t)pl_shape_numel(out);
    ws->loss_buf = pl_alloc(nk * sizeof(float));
    ws->loss_grad = pl_alloc(nk * sizeof(float));
    if (!ws->loss_buf || !ws->loss_grad)
        return pl_err_set(err, PL_ERR_NOMEM, "model: out of memory for loss buffers");
    return PL_OK;
}

/* Find or build the workspace for input shape `in` (least recently used
 * slot is recycled). */
static int ws_get(pl_model *m, pl_shape in, pl_ws **out, pl_err *err)
{
    pl_ws *victim = &m->ws[0];
    for (int i = 0; i < PL_WS_MAX; i++) {
        pl_ws *ws = &m->ws[i];
        if (ws->st && pl_shape_eq(&ws->in, &in)) {
            ws->last_use = ++m->tick;
            *out = ws;
            return PL_OK;
        }
        if (!ws->st || (victim->st && ws->last_use < victim->last_use))
            victim = ws;
    }
    if (victim == m->cur)
        m->cur = NULL;
    ws_release(m, victim);
    int st = ws_prepare(m, victim, in, err);
    if (st) {
        ws_release(m, victim);
        return st;
    }
    victim->last_use = ++m->tick;
    *out = victim;
    return PL_OK;
}

/* ---- gradient buffers: a pool lent out by liveness ---- */

/* The node whose buffers an alias (flatten) shares. */
static int root_of(const pl_model *m, int j)
{
    while (m->nodes[j].ops->alias)
        j = m->nodes[j].in[0];
    return j;
}

/* A zeroed buffer of n floats from the pool (best fit), or a new one. */
static float *grad_acquire(pl_ws *ws, size_t n)
{
    int best = -1;
    for (int b = 0; b < ws->nbufs; b++)
        if (!ws->busy[b] && ws->bufcap[b] >= n && (best < 0 || ws->bufcap[b] < ws->bufcap[best]))
            best = b;
    if (best < 0) {
        float **bufs = realloc(ws->bufs, (size_t)(ws->nbufs + 1) * sizeof *bufs);
        if (bufs)
            ws->bufs = bufs;
        size_t *caps = bufs ? realloc(ws->bufcap, (size_t)(ws->nbufs + 1) * sizeof *caps) : NULL;
        if (caps)
            ws->bufcap = caps;
        char *busy = caps ? realloc(ws->busy, (size_t)(ws->nbufs + 1)) : NULL;
        if (busy)
            ws->busy = busy;
        float *p = busy ? pl_alloc(n * sizeof(float)) : NULL;
        if (!p)
            return NULL;
        best = ws->nbufs++;
        ws->bufs[best] = p;
        ws->bufcap[best] = n;
    }
    ws->busy[best] = 1;
    memset(ws->bufs[best], 0, n * sizeof(float));
    return ws->bufs[best];
}

/* Give node i's gradient buffer back, and clear the aliases sharing it. */
static void grad_release(pl_model *m, pl_ws *ws, int i)
{
    float *p = ws->st[i].dy;
    if (!p)
        return;
    for (int b = 0; b < ws->nbufs; b++)
        if (ws->bufs[b] == p)
            ws->busy[b] = 0;
    for (int a = 1; a < m->nnodes; a++)
        if (ws->st[a].dy == p)
            ws->st[a].dy = NULL;
}

static void grad_release_all(pl_model *m, pl_ws *ws)
{
    for (int i = 1; i < m->nnodes; i++)
        ws->st[i].dy = NULL;
    for (int b = 0; b < ws->nbufs; b++)
        ws->busy[b] = 0;
}

/* Make node j's gradient buffer available (zeroed on first use); aliases
 * share their root's. The input node has none. */
static int grad_ensure(pl_model *m, pl_ws *ws, int j, pl_err *err)
{
    int r = root_of(m, j);
    if (r == 0)
        return PL_OK;
    if (!ws->st[r].dy) {
        ws->st[r].dy = grad_acquire(ws, (size_t)pl_shape_numel(&ws->st[r].shape));
        if (!ws->st[r].dy)
            return pl_err_set(err, PL_ERR_NOMEM, "model: out of memory for gradients of layer %d", r);
    }
    for (int k = j; k != r; k = m->nodes[k].in[0])
        ws->st[k].dy = ws->st[r].dy;
    return PL_OK;
}

/* ---- running ---- */

int pl_model_forward(pl_model *m, const float *x, int n, int h, int w, int mode, pl_err *err)
{
    if (!m->finished)
        return pl_err_set(err, PL_ERR_ARG, "model: forward before pl_model_finish");
    if (n <= 0 || h <= 0 || w <= 0)
        return pl_err_set(err, PL_ERR_ARG, "model: batch %dx%dx%dx%d must be positive", n, m->c, h, w);
    pl_ws *ws;
    int st = ws_get(m, pl_shape4(n, m->c, h, w), &ws, err);
    if (st)
        return st;
    ws->st[0].y = (float *)x; /* borrowed for the duration of this forward/backward */
    for (int i = 1; i < m->nnodes; i++) {
        pl_node *nd = &m->nodes[i];
        if (nd->ops->alias) {
            ws->st[i].y = ws->st[nd->in[0]].y;
            continue;
        }
        st = nd->ops->forward(m, nd, ws, mode, err);
        if (st)
            return pl_err_wrap(err, st, "forward layer %d (%s)", i, nd->ops->kind);
    }
    m->cur = ws;
    return PL_OK;
}

const float *pl_model_output(const pl_model *m, int *n, int *k)
{
    if (!m->cur)
        return NULL;
    const pl_nstate *s = &m->cur->st[m->nnodes - 1];
    *n = (int)s->shape.dim[0];
    *k = (int)s->shape.dim[1];
    return s->y;
}

/* A fresh, zeroed output gradient (every other buffer back in the pool). */
static int start_grads(pl_model *m, pl_ws *ws, pl_err *err)
{
    grad_release_all(m, ws);
    ws->has_grads = 1;
    return grad_ensure(m, ws, m->nnodes - 1, err);
}

int pl_model_set_output_grad(pl_model *m, const float *dy, pl_err *err)
{
    if (!m->cur)
        return pl_err_set(err, PL_ERR_ARG, "model: output gradient before forward");
    int st = start_grads(m, m->cur, err);
    if (st)
        return st;
    pl_nstate *s = &m->cur->st[m->nnodes - 1];
    memcpy(s->dy, dy, (size_t)pl_shape_numel(&s->shape) * sizeof(float));
    return PL_OK;
}

int pl_loss_parse(const char *name, pl_loss_kind *out, pl_err *err)
{
    static const struct { const char *name; pl_loss_kind kind; } names[] = {
        {"cross_entropy", PL_LOSS_CROSS_ENTROPY}, {"CrossEntropyLoss", PL_LOSS_CROSS_ENTROPY},
        {"ce", PL_LOSS_CROSS_ENTROPY},            {"crossentropy", PL_LOSS_CROSS_ENTROPY},
        {"nll", PL_LOSS_NLL},                     {"NLLLoss", PL_LOSS_NLL},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].kind;
            return PL_OK;
        }
    return pl_err_set(err, PL_ERR_ARG, "unknown loss '%s' (expected cross_entropy or nll)", name);
}

int pl_model_loss(pl_model *m, const int32_t *targets, pl_loss_kind kind, float *loss, pl_err *err)
{
    return pl_model_loss_scaled(m, targets, kind, 1.0f, loss, err);
}

int pl_model_loss_scaled(pl_model *m, const int32_t *targets, pl_loss_kind kind, float grad_scale, float *loss,
                         pl_err *err)
{
    pl_ws *ws = m->cur;
    if (!ws)
        return pl_err_set(err, PL_ERR_ARG, "model: loss before forward");
    pl_nstate *out = &ws->st[m->nnodes - 1];
    int n = (int)out->shape.dim[0], k = (int)out->shape.dim[1];
    for (int i = 0; i < n; i++)
        if (targets[i] < 0 || targets[i] >= k)
            return pl_err_set(err, PL_ERR_ARG, "loss: target %d of sample %d outside [0, %d)", targets[i], i, k);
    const float *logp = out->y;
    if (kind == PL_LOSS_CROSS_ENTROPY) {
        m->be->logsoftmax_fwd(n, k, out->y, ws->loss_buf);
        logp = ws->loss_buf;
    }
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum -= logp[(size_t)i * k + targets[i]];
    *loss = (float)(sum / n);
    if (!isfinite(*loss))
        return pl_err_set(err, PL_ERR_NUMERIC, "loss is %f (diverged: lower the learning rate?)", (double)*loss);

    int st = start_grads(m, ws, err);
    if (st)
        return st;
    float *g = kind == PL_LOSS_CROSS_ENTROPY ? ws->loss_grad : out->dy;
    memset(g, 0, (size_t)n * k * sizeof(float));
    for (int i = 0; i < n; i++)
        g[(size_t)i * k + targets[i]] = -grad_scale / (float)n;
    if (kind == PL_LOSS_CROSS_ENTROPY)
        m->be->logsoftmax_bwd(n, k, ws->loss_buf, g, out->dy);
    return PL_OK;
}

int pl_model_backward(pl_model *m, pl_err *err)
{
    pl_ws *ws = m->cur;
    if (!ws || !ws->has_grads)
        return pl_err_set(err, PL_ERR_ARG, "model: backward without forward and loss");
    /* Reverse order: every consumer of node i runs before i, so i's
     * gradient is complete when its own backward runs; after that its
     * buffer returns to the pool for earlier layers. */
    int st = PL_OK;
    for (int i = m->nnodes - 1; i >= 1 && !st; i--) {
        pl_node *nd = &m->nodes[i];
        if (nd->ops->alias || !ws->st[i].dy) /* no gradient reaches it */
            continue;
        for (int k = 0; k < nd->nin && !st; k++)
            st = grad_ensure(m, ws, nd->in[k], err);
        if (!st && (st = nd->ops->backward(m, nd, ws, err)))
            st = pl_err_wrap(err, st, "backward layer %d (%s)", i, nd->ops->kind);
        grad_release(m, ws, i);
    }
    grad_release_all(m, ws);
    ws->has_grads = 0; /* the output gradient is consumed */
    return st;
}

void pl_model_zero_grad(pl_model *m) { pl_flat_zero(&m->grads); }

uint64_t pl_model_checksum(pl_model *m)
{
    uint64_t h = pl_hash_bytes(PL_FNV_OFFSET, m->params.data, m->params.count * sizeof(float));
    return pl_hash_bytes(h, m->buffers.data, m->buffers.count * sizeof(float));
}

int pl_model_count_correct(const pl_model *m, const int32_t *targets)
{
    int n, k;
    const float *y = pl_model_output(m, &n, &k);
    if (!y)
        return 0;
    int correct = 0;
    for (int i = 0; i < n; i++) {
        const float *row = y + (size_t)i * k;
        int best = 0;
        for (int j = 1; j < k; j++)
            if (row[j] > row[best])
                best = j;
        correct += best == targets[i];
    }
    return correct;
}

void pl_model_summary(const pl_model *m, void *file)
{
    FILE *f = file;
    char buf[64];
    fprintf(f, "%-4s %-12s %-24s %-20s %s\n", "id", "layer", "name", "output", "params");
    for (int i = 0; i < m->nnodes; i++) {
        const pl_node *nd = &m->nodes[i];
        int64_t np = 0;
        for (int j = 0; j < 2; j++)
            if (nd->p[j] >= 0)
                np += pl_shape_numel(&m->params.views[nd->p[j]].shape);
        fprintf(f, "%-4d %-12s %-24s %-20s %lld\n", i, nd->ops->kind, nd->name ? nd->name : "-",
                pl_shape_str(&nd->build_shape, buf, sizeof buf), (long long)np);
    }
    fprintf(f, "total parameters: %zu, buffers: %zu floats\n", m->params.count, m->buffers.count);
}
