/* fast_conv.c — oneDNN convolution and sgemm for the fast backend.
 *
 * A convolution plan owns, for one descriptor: the forward, backward-data and
 * backward-weights primitives; the reorders between our plain NCHW / OIHW /
 * [c_out] buffers and the layouts the primitives chose; the intermediate
 * buffers in those layouts; one user-mode scratchpad shared by every
 * primitive of the plan; and its own stream. A plan is used by one thread at
 * a time (different plans may run concurrently).
 *
 * Backward must ADD into dx / dw: the primitives write into plan-owned
 * buffers, and a reorder with a sum post-op (dst = reorder(src) + dst) adds
 * the result into the caller's plain buffer.
 */
#include "backend/fast_conv.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "peerless/tensor.h"

/* PEERLESS_CONV_LAYOUT=plain|any forces the layout used inside the
 * primitives (for benchmarking); by default conv_layout_any() decides. */
#define CONV_LAYOUT_ENV "PEERLESS_CONV_LAYOUT"

const char pl_fast_conv_impl[] = "oneDNN";

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t g_engine;
static dnnl_status_t g_engine_status = dnnl_success;

static void engine_init(void) { g_engine_status = dnnl_engine_create(&g_engine, dnnl_cpu, 0); }

/* The process-wide CPU engine, created on first use (thread-safe). */
static dnnl_status_t engine_get(dnnl_engine_t *e)
{
    pthread_once(&g_once, engine_init);
    *e = g_engine;
    return g_engine_status;
}

/* ---- gemm ---- */

/* C[m,n] = alpha * op(A)[m,k] op(B)[k,n] + beta * C, row-major. */
void pl_fast_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                  int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta,
                   c, ldc) == dnnl_success)
        return;
    /* dnnl_sgemm only rejects arguments (e.g. k == 0 or a short leading
     * dimension); the table entry cannot report, so compute it plainly. */
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float s = 0;
            for (int p = 0; p < k; p++)
                s += (trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]) *
                     (trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j]);
            float *cij = &c[(size_t)i * ldc + j];
            *cij = alpha * s + (beta == 0.0f ? 0.0f : beta * *cij);
        }
}

/* ---- convolution plan ---- */

/* One primitive and its scratchpad memory (a view of the plan's buffer). */
typedef struct step {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t scratch; /* NULL if the primitive needs none */
} step;

/* One tensor argument of a primitive. */
typedef struct conv_arg {
    dnnl_memory_t user;  /* our plain buffer; its handle is set on each call */
    dnnl_memory_t inner; /* plan-owned, in the primitive's layout; NULL: use `user` */
    step reorder;        /* user->inner (inputs) or inner->user (outputs) */
} conv_arg;

typedef struct conv_plan {
    pl_conv2d_desc d;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    step fwd, bwd_data, bwd_wei;
    conv_arg fx, fw, fy;       /* forward: x, w -> y */
    conv_arg ddy, dw_in, ddx;  /* backward data: dy, w -> dx (added) */
    conv_arg wx, wdy, wdw;     /* backward weights: x, dy -> dw (added) */
    dnnl_memory_t bias;        /* [c_out], plain */
    size_t woff;               /* offset of the first kernel tap used (see conv_taps) */
    /* Backward reuses the forward's reordered x and w (fx.inner, fw.inner)
     * when the primitives want the same layout and bwd gets the pointers the
     * last forward got (backend.h: they must be unchanged since), and the
     * backward-data reorder of dy for backward-weights. */
    int share_x, share_w, share_dy;
    const float *fwd_x, *fwd_w; /* arguments of the last successful forward */
    float *zero_bias;          /* [c_out] zeros, used when has_bias but b == NULL */
    void *scratch;             /* shared scratchpad, pl_alloc'ed */
    const char *stage;         /* what failed, for the error message */
} conv_plan;

/* Plain descriptors of our buffers, and of what the primitives may use. */
typedef struct conv_mds {
    dnnl_memory_desc_t x, w, y, b;     /* our layouts (x may be a cropped view) */
    dnnl_memory_desc_t xa, wa, ya;     /* requested inside the primitives */
    dnnl_dims_t strides, dilates, pad_l, pad_r;
} conv_mds;

static void step_free(step *s)
{
    if (s->scratch)
        dnnl_memory_destroy(s->scratch);
    if (s->prim)
        dnnl_primitive_destroy(s->prim);
    if (s->pd)
        dnnl_primitive_desc_destroy(s->pd);
    memset(s, 0, sizeof *s);
}

static void arg_free(conv_arg *a)
{
    step_free(&a->reorder);
    if (a->inner)
        dnnl_memory_destroy(a->inner);
    if (a->user)
        dnnl_memory_destroy(a->user);
}

void pl_fast_conv2d_plan_free(void *plan)
{
    conv_plan *p = plan;
    if (!p)
        return;
    conv_arg *args[] = {&p->fx, &p->fw, &p->fy, &p->ddy, &p->dw_in, &p->ddx, &p->wx, &p->wdy, &p->wdw};
    for (size_t i = 0; i < sizeof args / sizeof *args; i++)
        arg_free(args[i]);
    step_free(&p->fwd);
    step_free(&p->bwd_data);
    step_free(&p->bwd_wei);
    if (p->bias)
        dnnl_memory_destroy(p->bias);
    if (p->stream)
        dnnl_stream_destroy(p->stream);
    pl_free(p->zero_bias);
    pl_free(p->scratch);
    free(p);
}

/* Attributes for every primitive of a plan: user-mode scratchpad, and for
 * the gradient reorders a sum post-op so they add into the destination. */
static dnnl_status_t make_attr(dnnl_primitive_attr_t *attr, int accumulate)
{
    dnnl_status_t st = dnnl_primitive_attr_create(attr);
    if (st == dnnl_success)
        st = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (st != dnnl_success || !accumulate)
        return st;
    dnnl_post_ops_t ops;
    st = dnnl_post_ops_create(&ops);
    if (st != dnnl_success)
        return st;
    st = dnnl_post_ops_append_sum(ops, 1.0f);
    if (st == dnnl_success)
        st = dnnl_primitive_attr_set_post_ops(*attr, ops);
    dnnl_post_ops_destroy(ops);
    return st;
}

/* Create the primitive descriptor of `op` (NULL: a reorder src->dst) and its primitive. */
static dnnl_status_t step_make(conv_plan *p, step *s, const_dnnl_op_desc_t op,
                               const_dnnl_primitive_desc_t hint, const dnnl_memory_desc_t *src,
                               const dnnl_memory_desc_t *dst, int accumulate)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_status_t st = make_attr(&attr, accumulate);
    if (st == dnnl_success)
        st = op ? dnnl_primitive_desc_create(&s->pd, op, attr, p->engine, hint)
                : dnnl_reorder_primitive_desc_create(&s->pd, src, p->engine, dst, p->engine, attr);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (st == dnnl_success)
        st = dnnl_primitive_create(&s->prim, s->pd);
    return st;
}

/* Input argument: our buffer, plus a reorder into the layout of `pd` if it differs. */
static dnnl_status_t arg_in(conv_plan *p, conv_arg *a, const dnnl_memory_desc_t *user,
                            const_dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    const dnnl_memory_desc_t *inner = dnnl_primitive_desc_query_md(pd, what, 0);
    dnnl_status_t st = dnnl_memory_create(&a->user, user, p->engine, DNNL_MEMORY_NONE);
    if (st != dnnl_success || dnnl_memory_desc_equal(user, inner))
        return st;
    st = dnnl_memory_create(&a->inner, inner, p->engine, DNNL_MEMORY_ALLOCATE);
    if (st == dnnl_success)
        st = step_make(p, &a->reorder, NULL, NULL, user, inner, 0);
    return st;
}

/* Output argument: written directly into our buffer if layouts match and we
 * overwrite; otherwise into a plan buffer, then reordered (and added) into ours. */
static dnnl_status_t arg_out(conv_plan *p, conv_arg *a, const dnnl_memory_desc_t *user,
                             const_dnnl_primitive_desc_t pd, dnnl_query_t what, int accumulate)
{
    const dnnl_memory_desc_t *inner = dnnl_primitive_desc_query_md(pd, what, 0);
    dnnl_status_t st = dnnl_memory_create(&a->user, user, p->engine, DNNL_MEMORY_NONE);
    if (st != dnnl_success || (!accumulate && dnnl_memory_desc_equal(user, inner)))
        return st;
    st = dnnl_memory_create(&a->inner, inner, p->engine, DNNL_MEMORY_ALLOCATE);
    if (st == dnnl_success)
        st = step_make(p, &a->reorder, NULL, NULL, inner, user, accumulate);
    return st;
}

/* Rows of the input the convolution reads (PyTorch floors the output size,
 * so trailing rows may be unused: oneDNN would need a negative right pad),
 * and the right padding that makes oneDNN's output size equal ours. */
static void conv_extent(int in, int k, int dil, int stride, int pad, int out, int *used, int *pad_r)
{
    int need = (out - 1) * stride + dil * (k - 1) + 1 - pad;
    *used = need < in ? need : in;
    *pad_r = need - *used;
}

/* Kernel taps [*t0, *t1] along one axis that ever touch the input: on small
 * inputs (e.g. a 3x3 conv on a 1x1 map) the outer taps only ever see
 * padding, so the convolution is the same with the kernel cropped to those
 * taps, which does a fraction of the work. No crop if it would need a
 * negative padding. */
static void conv_taps(int in, int k, int dil, int stride, int pad, int out, int *t0, int *t1)
{
    *t0 = k;
    *t1 = -1;
    for (int i = 0; i < k; i++) {
        int lo = i * dil - pad, hi = (out - 1) * stride + i * dil - pad;
        int first = lo >= 0 ? lo : lo + ((-lo + stride - 1) / stride) * stride;
        if (first <= hi && first < in) {
            *t0 = i < *t0 ? i : *t0;
            *t1 = i;
        }
    }
    if (*t1 < *t0 || *t0 * dil > pad) {
        *t0 = 0;
        *t1 = k - 1;
    }
}

/* Weight descriptor of the cropped kernel [.., kh, kw] inside the full
 * [.., d->kh, d->kw] buffer (strided view). */
static dnnl_status_t conv_wmd(dnnl_memory_desc_t *md, const pl_conv2d_desc *d, int kh, int kw)
{
    int g = d->groups;
    dnnl_dim_t co = d->c_out / g, ci = d->c_in / g, ks = (dnnl_dim_t)d->kh * d->kw;
    if (g == 1) {
        dnnl_dims_t dims = {co, ci, kh, kw}, str = {ci * ks, ks, d->kw, 1};
        return dnnl_memory_desc_init_by_strides(md, 4, dims, dnnl_f32, str);
    }
    dnnl_dims_t dims = {g, co, ci, kh, kw}, str = {co * ci * ks, ci * ks, ks, d->kw, 1};
    return dnnl_memory_desc_init_by_strides(md, 5, dims, dnnl_f32, str);
}

static int conv_layout_any(const pl_conv2d_desc *d);

static dnnl_status_t conv_mds_init(conv_mds *m, conv_plan *p, int *crop_ok)
{
    const pl_conv2d_desc *d = &p->d;
    int h0, h1, w0, w1, hu, wu, prh, prw;
    conv_taps(d->h_in, d->kh, d->dil_h, d->stride_h, d->pad_h, d->h_out, &h0, &h1);
    conv_taps(d->w_in, d->kw, d->dil_w, d->stride_w, d->pad_w, d->w_out, &w0, &w1);
    int kh = h1 - h0 + 1, kw = w1 - w0 + 1, pth = d->pad_h - h0 * d->dil_h, ptw = d->pad_w - w0 * d->dil_w;
    p->woff = (size_t)h0 * d->kw + (size_t)w0;
    conv_extent(d->h_in, kh, d->dil_h, d->stride_h, pth, d->h_out, &hu, &prh);
    conv_extent(d->w_in, kw, d->dil_w, d->stride_w, ptw, d->w_out, &wu, &prw);
    *crop_ok = hu >= 1 && wu >= 1;
    if (!*crop_ok)
        return dnnl_unimplemented;
    int g = d->groups, any = conv_layout_any(d);
    dnnl_dims_t xd = {d->n, d->c_in, hu, wu};
    dnnl_dims_t xs = {(dnnl_dim_t)d->c_in * d->h_in * d->w_in, (dnnl_dim_t)d->h_in * d->w_in, d->w_in, 1};
    dnnl_dims_t yd = {d->n, d->c_out, d->h_out, d->w_out};
    dnnl_dims_t wd = {g, d->c_out / g, d->c_in / g, kh, kw};
    dnnl_dims_t bd = {d->c_out};
    int wn = g > 1 ? 5 : 4;
    const dnnl_dim_t *wdp = g > 1 ? wd : wd + 1;
    dnnl_format_tag_t wtag = g > 1 ? dnnl_goihw : dnnl_oihw;
    dnnl_status_t st = dnnl_memory_desc_init_by_strides(&m->x, 4, xd, dnnl_f32, xs);
    if (st == dnnl_success)
        st = conv_wmd(&m->w, d, kh, kw);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&m->y, 4, yd, dnnl_f32, dnnl_nchw);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&m->b, 1, bd, dnnl_f32, dnnl_x);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&m->xa, 4, xd, dnnl_f32, any ? dnnl_format_tag_any : dnnl_nchw);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&m->wa, wn, wdp, dnnl_f32, any ? dnnl_format_tag_any : wtag);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&m->ya, 4, yd, dnnl_f32, any ? dnnl_format_tag_any : dnnl_nchw);
    dnnl_dims_t s = {d->stride_h, d->stride_w}, dl = {d->dil_h - 1, d->dil_w - 1};
    dnnl_dims_t pl = {pth, ptw}, pr = {prh, prw};
    memcpy(m->strides, s, sizeof s);
    memcpy(m->dilates, dl, sizeof dl);
    memcpy(m->pad_l, pl, sizeof pl);
    memcpy(m->pad_r, pr, sizeof pr);
    return st;
}

/* The three convolution primitives. */
static dnnl_status_t plan_convs(conv_plan *p, const conv_mds *m)
{
    dnnl_convolution_desc_t cd;
    p->stage = "forward descriptor";
    dnnl_status_t st = dnnl_dilated_convolution_forward_desc_init(
        &cd, dnnl_forward_training, dnnl_convolution_direct, &m->xa, &m->wa,
        p->d.has_bias ? &m->b : NULL, &m->ya, m->strides, m->dilates, m->pad_l, m->pad_r);
    if (st == dnnl_success)
        st = step_make(p, &p->fwd, &cd, NULL, NULL, NULL, 0);
    if (st != dnnl_success)
        return st;
    p->stage = "backward-data descriptor";
    st = dnnl_dilated_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &m->xa, &m->wa,
                                                         &m->ya, m->strides, m->dilates, m->pad_l, m->pad_r);
    if (st == dnnl_success)
        st = step_make(p, &p->bwd_data, &cd, p->fwd.pd, NULL, NULL, 0);
    if (st != dnnl_success)
        return st;
    p->stage = "backward-weights descriptor";
    st = dnnl_dilated_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &m->xa, &m->wa,
                                                            NULL, &m->ya, m->strides, m->dilates,
                                                            m->pad_l, m->pad_r);
    if (st == dnnl_success)
        st = step_make(p, &p->bwd_wei, &cd, p->fwd.pd, NULL, NULL, 0);
    return st;
}

/* Both arguments are reordered into the same layout. */
static int same_inner(const conv_arg *a, const conv_arg *b)
{
    const dnnl_memory_desc_t *ma, *mb;
    if (!a->inner || !b->inner || dnnl_memory_get_memory_desc(a->inner, &ma) != dnnl_success ||
        dnnl_memory_get_memory_desc(b->inner, &mb) != dnnl_success)
        return 0;
    return dnnl_memory_desc_equal(ma, mb);
}

/* Reorders and buffers around the primitives. */
static dnnl_status_t plan_args(conv_plan *p, const conv_mds *m)
{
    p->stage = "layout reorders";
    dnnl_status_t st = arg_in(p, &p->fx, &m->x, p->fwd.pd, dnnl_query_src_md);
    if (st == dnnl_success)
        st = arg_in(p, &p->fw, &m->w, p->fwd.pd, dnnl_query_weights_md);
    if (st == dnnl_success)
        st = arg_out(p, &p->fy, &m->y, p->fwd.pd, dnnl_query_dst_md, 0);
    if (st == dnnl_success)
        st = arg_in(p, &p->ddy, &m->y, p->bwd_data.pd, dnnl_query_diff_dst_md);
    if (st == dnnl_success)
        st = arg_in(p, &p->dw_in, &m->w, p->bwd_data.pd, dnnl_query_weights_md);
    if (st == dnnl_success)
        st = arg_out(p, &p->ddx, &m->x, p->bwd_data.pd, dnnl_query_diff_src_md, 1);
    if (st == dnnl_success)
        st = arg_in(p, &p->wx, &m->x, p->bwd_wei.pd, dnnl_query_src_md);
    if (st == dnnl_success)
        st = arg_in(p, &p->wdy, &m->y, p->bwd_wei.pd, dnnl_query_diff_dst_md);
    if (st == dnnl_success)
        st = arg_out(p, &p->wdw, &m->w, p->bwd_wei.pd, dnnl_query_diff_weights_md, 1);
    if (st == dnnl_success)
        st = dnnl_memory_create(&p->bias, &m->b, p->engine, DNNL_MEMORY_NONE);
    if (st == dnnl_success) {
        p->share_x = same_inner(&p->fx, &p->wx);
        p->share_w = same_inner(&p->fw, &p->dw_in);
        p->share_dy = same_inner(&p->ddy, &p->wdy);
    }
    return st;
}

/* Every step of the plan, for the shared scratchpad. */
static int plan_steps(conv_plan *p, step **out)
{
    int n = 0;
    out[n++] = &p->fwd;
    out[n++] = &p->bwd_data;
    out[n++] = &p->bwd_wei;
    conv_arg *args[] = {&p->fx, &p->fw, &p->fy, &p->ddy, &p->dw_in, &p->ddx, &p->wx, &p->wdy, &p->wdw};
    for (size_t i = 0; i < sizeof args / sizeof *args; i++)
        if (args[i]->reorder.prim)
            out[n++] = &args[i]->reorder;
    return n;
}

/* One scratchpad buffer of the largest size any step asks for. */
static dnnl_status_t plan_scratch(conv_plan *p)
{
    step *steps[12];
    int n = plan_steps(p, steps);
    size_t max = 0;
    for (int i = 0; i < n; i++) {
        size_t sz = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(steps[i]->pd, dnnl_query_scratchpad_md, 0));
        max = sz > max ? sz : max;
    }
    p->stage = "scratchpad";
    if (max == 0)
        return dnnl_success;
    p->scratch = pl_alloc(max);
    if (!p->scratch)
        return dnnl_out_of_memory;
    for (int i = 0; i < n; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(steps[i]->pd, dnnl_query_scratchpad_md, 0);
        if (dnnl_memory_desc_get_size(md) == 0)
            continue;
        dnnl_status_t st = dnnl_memory_create(&steps[i]->scratch, md, p->engine, p->scratch);
        if (st != dnnl_success)
            return st;
    }
    return dnnl_success;
}

/* Measured with bench_layers and the DNNL_VERBOSE times of whole training
 * steps (1 and 2 threads): oneDNN's blocked layouts (plus reorders) win
 * 1.5-9x for 3x3/5x5 and depthwise convolutions; plain NCHW wins ~1.6x for
 * 1x1 stride-1 convs (a plain gemm, no weight reorders) but not for 3x3
 * kernels cropped to 1x1 on a 1x1 map (blocked 15 ms vs plain 20 ms per
 * ResNet-18 step, so the test uses the uncropped kernel), and ~3x in
 * backward for LeNet's 1->6 first layer. Stems on 1-4 input channels stay
 * plain: blocked would be ~3x faster for ResNet's 3->64 7x7, but its
 * float32 rounding moves 3 SGD steps of ResNet-18 / MobileNetV3 outside
 * torch_models' displacement tolerance (5e-4 relative; plain passes). */
static int conv_layout_any(const pl_conv2d_desc *d)
{
    const char *v = getenv(CONV_LAYOUT_ENV);
    if (v && (!strcmp(v, "plain") || !strcmp(v, "any")))
        return !strcmp(v, "any");
    if (d->groups > 1)
        return 1;
    int pointwise = d->kh == 1 && d->kw == 1 && d->stride_h == 1 && d->stride_w == 1;
    return !(pointwise || d->c_in <= 4);
}

static dnnl_status_t plan_build(conv_plan *p)
{
    conv_mds m;
    int crop_ok;
    p->stage = "engine";
    dnnl_status_t st = engine_get(&p->engine);
    if (st == dnnl_success)
        st = dnnl_stream_create(&p->stream, p->engine, dnnl_stream_default_flags);
    p->stage = "input entirely in padding";
    if (st == dnnl_success)
        st = conv_mds_init(&m, p, &crop_ok);
    if (st == dnnl_success)
        st = plan_convs(p, &m);
    if (st == dnnl_success)
        st = plan_args(p, &m);
    if (st == dnnl_success)
        st = plan_scratch(p);
    return st;
}

int pl_fast_conv2d_plan(const pl_conv2d_desc *d, void **plan, pl_err *err)
{
    *plan = NULL;
    int bad = pl_fast_conv2d_check(d, err);
    if (bad)
        return bad;
    conv_plan *p = calloc(1, sizeof *p);
    if (!p)
        return pl_err_set(err, PL_ERR_NOMEM, "fast conv2d plan: out of memory");
    p->d = *d;
    if (d->has_bias) {
        p->zero_bias = pl_calloc((size_t)d->c_out * sizeof(float));
        if (!p->zero_bias) {
            pl_fast_conv2d_plan_free(p);
            return pl_err_set(err, PL_ERR_NOMEM, "fast conv2d plan: out of memory for bias [%d]", d->c_out);
        }
    }
    dnnl_status_t st = plan_build(p);
    if (st != dnnl_success) {
        int rc = pl_err_set(err, st == dnnl_out_of_memory ? PL_ERR_NOMEM : PL_ERR_BACKEND,
                            "fast conv2d plan (%s): oneDNN status %d (%s) for x [%d,%d,%d,%d], w [%d,%d,%d,%d], "
                            "stride %dx%d, pad %dx%d, dilation %dx%d, groups %d",
                            p->stage, (int)st, dnnl_status2str(st), d->n, d->c_in, d->h_in, d->w_in, d->c_out,
                            d->c_in / d->groups, d->kh, d->kw, d->stride_h, d->stride_w, d->pad_h, d->pad_w,
                            d->dil_h, d->dil_w, d->groups);
        pl_fast_conv2d_plan_free(p);
        return rc;
    }
    *plan = p;
    return PL_OK;
}

/* ---- execution ---- */

static dnnl_status_t step_run(conv_plan *p, const step *s, int nargs, const dnnl_exec_arg_t *args)
{
    dnnl_exec_arg_t all[8];
    memcpy(all, args, (size_t)nargs * sizeof *args);
    if (s->scratch)
        all[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->scratch};
    return dnnl_primitive_execute(s->prim, p->stream, nargs, all);
}

/* oneDNN takes non-const handles; inputs are only read. */
static dnnl_status_t arg_bind(conv_arg *a, const float *ptr)
{
    return dnnl_memory_set_data_handle(a->user, (void *)(uintptr_t)ptr);
}

/* Bind an input and bring it into the primitive's layout; *m is what the primitive reads. */
static dnnl_status_t input_ready(conv_plan *p, conv_arg *a, const float *ptr, dnnl_memory_t *m)
{
    dnnl_status_t st = arg_bind(a, ptr);
    *m = a->inner ? a->inner : a->user;
    if (st != dnnl_success || !a->inner)
        return st;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, a->user}, {DNNL_ARG_DST, a->inner}};
    return step_run(p, &a->reorder, 2, args);
}

/* Move (or add) a primitive's output from its plan buffer into ours. */
static dnnl_status_t output_done(conv_plan *p, conv_arg *a)
{
    if (!a->inner)
        return dnnl_success;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, a->inner}, {DNNL_ARG_DST, a->user}};
    return step_run(p, &a->reorder, 2, args);
}

/* x [n,c_in,h_in,w_in], w [c_out,c_in/g,kh,kw], b [c_out] or NULL -> y [n,c_out,h_out,w_out] */
int pl_fast_conv2d_fwd(void *plan, const float *x, const float *w, const float *b, float *y)
{
    conv_plan *p = plan;
    dnnl_memory_t mx, mw;
    dnnl_status_t st = input_ready(p, &p->fx, x, &mx);
    if (st == dnnl_success)
        st = input_ready(p, &p->fw, w + p->woff, &mw);
    if (st == dnnl_success)
        st = arg_bind(&p->fy, y);
    if (st == dnnl_success && p->d.has_bias)
        st = dnnl_memory_set_data_handle(p->bias, (void *)(uintptr_t)(b ? b : p->zero_bias));
    if (st != dnnl_success)
        return PL_ERR_BACKEND;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, mx},
                              {DNNL_ARG_WEIGHTS, mw},
                              {DNNL_ARG_DST, p->fy.inner ? p->fy.inner : p->fy.user},
                              {DNNL_ARG_BIAS, p->bias}};
    p->fwd_x = p->fwd_w = NULL;
    st = step_run(p, &p->fwd, p->d.has_bias ? 4 : 3, args);
    if (st == dnnl_success)
        st = output_done(p, &p->fy);
    if (st == dnnl_success)
        st = dnnl_stream_wait(p->stream);
    if (st != dnnl_success)
        return PL_ERR_BACKEND;
    p->fwd_x = x;
    p->fwd_w = w;
    return PL_OK;
}

/* dx [n,c_in,h_in,w_in] += dL/dx from dy [n,c_out,h_out,w_out] and w */
static dnnl_status_t conv_bwd_data(conv_plan *p, const float *w, const float *dy, float *dx)
{
    dnnl_memory_t mdy, mw = p->fw.inner;
    dnnl_status_t st = input_ready(p, &p->ddy, dy, &mdy);
    if (st == dnnl_success && !(p->share_w && w == p->fwd_w))
        st = input_ready(p, &p->dw_in, w + p->woff, &mw);
    if (st == dnnl_success)
        st = arg_bind(&p->ddx, dx);
    if (st != dnnl_success)
        return st;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_DIFF_DST, mdy}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DIFF_SRC, p->ddx.inner}};
    st = step_run(p, &p->bwd_data, 3, args);
    return st == dnnl_success ? output_done(p, &p->ddx) : st;
}

/* dw [c_out,c_in/g,kh,kw] += dL/dw from x and dy; dy_ready: conv_bwd_data
 * just reordered this dy into p->ddy.inner. */
static dnnl_status_t conv_bwd_weights(conv_plan *p, const float *x, const float *dy, float *dw, int dy_ready)
{
    dnnl_memory_t mx = p->fx.inner, mdy = p->ddy.inner;
    dnnl_status_t st = dnnl_success;
    if (!(p->share_x && x == p->fwd_x))
        st = input_ready(p, &p->wx, x, &mx);
    if (st == dnnl_success && !(p->share_dy && dy_ready))
        st = input_ready(p, &p->wdy, dy, &mdy);
    if (st == dnnl_success)
        st = arg_bind(&p->wdw, dw + p->woff);
    if (st != dnnl_success)
        return st;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, mx}, {DNNL_ARG_DIFF_DST, mdy}, {DNNL_ARG_DIFF_WEIGHTS, p->wdw.inner}};
    st = step_run(p, &p->bwd_wei, 3, args);
    return st == dnnl_success ? output_done(p, &p->wdw) : st;
}

int pl_fast_conv2d_bwd(void *plan, const float *x, const float *w, const float *dy, float *dx,
                       float *dw, float *db)
{
    conv_plan *p = plan;
    dnnl_status_t st = dnnl_success;
    if (dx)
        st = conv_bwd_data(p, w, dy, dx);
    if (st == dnnl_success && dw)
        st = conv_bwd_weights(p, x, dy, dw, dx != NULL);
    if (st == dnnl_success)
        st = dnnl_stream_wait(p->stream);
    if (st != dnnl_success)
        return PL_ERR_BACKEND;
    if (db)
        pl_fast_conv_bias_bwd(&p->d, dy, db);
    return PL_OK;
}
