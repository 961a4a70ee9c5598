/* backend.h — compute backends: one table of kernels, two implementations.
 *
 *   "ref"  plain single-threaded loops; the oracle every other backend and
 *          every gradient is checked against.
 *   "fast" oneDNN (convolution, sgemm, pooling, batch norm) + OpenMP loops.
 *
 * Conventions for every kernel:
 *   - tensors are float32, row-major, NCHW; shapes are stated per kernel;
 *   - forward kernels OVERWRITE their outputs;
 *   - backward kernels ADD into every gradient output (dx, dw, db, ...), so
 *     zeroing is a separate, explicit step; a NULL gradient pointer means
 *     "not needed" and is skipped;
 *   - kernels never allocate in the hot path except through plans: a plan is
 *     created once per shape (pl_backend.*_plan) and owns its workspaces;
 *   - kernels returning int return PL_OK or a negative pl_status.
 * Thread count: pl_backend_set_threads() (default: all cores).
 */
#ifndef PEERLESS_BACKEND_H
#define PEERLESS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "peerless/status.h"

/* ---- descriptors (plain data, filled by the *_desc_init helpers) ---- */

typedef struct pl_conv2d_desc {
    int n, c_in, h_in, w_in;   /* input  x: [n, c_in, h_in, w_in] */
    int c_out, kh, kw;         /* weight w: [c_out, c_in/groups, kh, kw]; bias [c_out] */
    int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
    int groups;                /* c_in and c_out divisible by groups; depthwise: groups=c_in */
    int has_bias;
    int h_out, w_out;          /* output y: [n, c_out, h_out, w_out] (computed) */
} pl_conv2d_desc;

/* Validate and compute h_out/w_out as PyTorch does. */
int pl_conv2d_desc_init(pl_conv2d_desc *d, pl_err *err);

typedef struct pl_pool_desc {
    int n, c, h_in, w_in;      /* x: [n, c, h_in, w_in] */
    int kh, kw, stride_h, stride_w, pad_h, pad_w;
    int ceil_mode;             /* PyTorch ceil_mode (last window must start inside input+left pad) */
    int count_include_pad;     /* avg pool only; PyTorch default 1 */
    int h_out, w_out;          /* y: [n, c, h_out, w_out] (computed) */
} pl_pool_desc;

/* Validate (pad <= k/2, output >= 1) and compute h_out/w_out as PyTorch does. */
int pl_pool_desc_init(pl_pool_desc *d, pl_err *err);

typedef struct pl_adapool_desc {
    int n, c, h_in, w_in;      /* x: [n, c, h_in, w_in] */
    int h_out, w_out;          /* y: [n, c, h_out, w_out]; may exceed input (bins overlap/repeat) */
} pl_adapool_desc;

typedef struct pl_bn_desc {
    int n, c, hw;              /* x, y: [n, c, hw] (hw = H*W; 1 for BatchNorm1d-like use) */
    float eps;
} pl_bn_desc;

typedef enum pl_act {
    PL_ACT_RELU = 0,
    PL_ACT_RELU6,
    PL_ACT_HARDSWISH,
    PL_ACT_HARDSIGMOID,
    PL_ACT_COUNT_
} pl_act;

/* ---- the kernel table ---- */

typedef struct pl_backend {
    const char *name;

    /* C[M,N] = alpha * op(A) op(B) + beta * C, row-major; op(A) is [M,K],
     * op(B) is [K,N]; trans_a/trans_b nonzero means the stored matrix is
     * transposed (A stored [K,M], B stored [N,K]). lda/ldb/ldc: row strides. */
    void (*gemm)(int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta,
                 float *c, int ldc);

    /* Convolution. A plan is created once per descriptor and owns any
     * workspace; free it with conv2d_plan_free (NULL is a no-op). */
    int (*conv2d_plan)(const pl_conv2d_desc *d, void **plan, pl_err *err);
    void (*conv2d_plan_free)(void *plan);
    /* y = conv(x, w) + b.  x [n,c_in,h_in,w_in], w [c_out,c_in/g,kh,kw],
     * b [c_out] or NULL (also NULL when !has_bias), y [n,c_out,h_out,w_out]. */
    int (*conv2d_fwd)(void *plan, const float *x, const float *w, const float *b, float *y);
    /* dx += dL/dx, dw += dL/dw, db += dL/db given dy [n,c_out,h_out,w_out].
     * Any of dx, dw, db may be NULL. If x or w is the pointer the last
     * conv2d_fwd on this plan got, its contents must be unchanged since
     * (the fast backend reuses its reordered copies of them). */
    int (*conv2d_bwd)(void *plan, const float *x, const float *w, const float *dy,
                      float *dx, float *dw, float *db);

    /* Batch norm, training mode: batch statistics over (n, hw) per channel.
     * mean[c], var[c] = biased batch variance, invstd[c] = 1/sqrt(var+eps)
     * are outputs saved for backward (and for the running-stat update). */
    void (*bn_fwd_train)(const pl_bn_desc *d, const float *x, const float *gamma,
                         const float *beta, float *y, float *mean, float *var, float *invstd);
    /* Eval mode: y = (x - rmean) / sqrt(rvar + eps) * gamma + beta. */
    void (*bn_fwd_eval)(const pl_bn_desc *d, const float *x, const float *gamma,
                        const float *beta, const float *rmean, const float *rvar, float *y);
    /* Backward of bn_fwd_train (statistics depend on x). */
    void (*bn_bwd_train)(const pl_bn_desc *d, const float *x, const float *gamma,
                         const float *mean, const float *invstd, const float *dy,
                         float *dx, float *dgamma, float *dbeta);
    /* Backward of bn_fwd_eval (statistics are constants). */
    void (*bn_bwd_eval)(const pl_bn_desc *d, const float *x, const float *gamma,
                        const float *rmean, const float *rvar, const float *dy,
                        float *dx, float *dgamma, float *dbeta);

    /* Max pool. argmax[n*c*h_out*w_out] receives, per output, the index
     * (h*w_in + w) of the chosen input in its plane (first max wins, NaN
     * propagates as in PyTorch); backward routes dy there. */
    void (*maxpool_fwd)(const pl_pool_desc *d, const float *x, float *y, int32_t *argmax);
    void (*maxpool_bwd)(const pl_pool_desc *d, const int32_t *argmax, const float *dy, float *dx);
    /* Average pool with PyTorch's divisor rules (count_include_pad, windows
     * clipped at the padded border in ceil_mode). */
    void (*avgpool_fwd)(const pl_pool_desc *d, const float *x, float *y);
    void (*avgpool_bwd)(const pl_pool_desc *d, const float *dy, float *dx);
    /* Adaptive average pool: bin i covers [floor(i*H/Ho), ceil((i+1)*H/Ho)). */
    void (*adapool_fwd)(const pl_adapool_desc *d, const float *x, float *y);
    void (*adapool_bwd)(const pl_adapool_desc *d, const float *dy, float *dx);

    /* Elementwise activation over n floats; y may alias x in forward.
     * Backward uses the forward INPUT x and PyTorch's derivative conventions
     * (relu: x>0; relu6: 0<x<6; hardsigmoid: -3<x<3 -> 1/6; hardswish:
     * x<-3 -> 0, x<=3 -> x/3+0.5, else 1). */
    void (*act_fwd)(pl_act kind, size_t n, const float *x, float *y);
    void (*act_bwd)(pl_act kind, size_t n, const float *x, const float *dy, float *dx);

    /* Row-wise log-softmax of x [rows, cols] into y; backward from y:
     * dx += dy - exp(y) * sum(dy). */
    void (*logsoftmax_fwd)(int rows, int cols, const float *x, float *y);
    void (*logsoftmax_bwd)(int rows, int cols, const float *y, const float *dy, float *dx);
} pl_backend;

/* The two built-in backends. */
const pl_backend *pl_backend_ref(void);
const pl_backend *pl_backend_fast(void);
/* Look up by name ("ref", "fast"); NULL if unknown. */
const pl_backend *pl_backend_by_name(const char *name);

/* Threads used by the fast backend and OpenMP loops; n <= 0 means all cores. */
void pl_backend_set_threads(int n);
int pl_backend_threads(void);

#endif
