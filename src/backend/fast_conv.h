/* fast_conv.h — private interface between the fast backend's table (fast.c)
 * and its convolution / GEMM parts: fast_conv.c (oneDNN, the default) or
 * fast_conv_gemm.c + gemm_eigen.cc (im2col/col2im + Eigen's SGEMM, the
 * -DPL_DNNL=OFF build used for the Lambda function). Not part of the public API.
 */
#ifndef PEERLESS_FAST_CONV_H
#define PEERLESS_FAST_CONV_H

#include "peerless/backend.h"

/* Which implementation this build has: "oneDNN" or "im2col+Eigen". */
extern const char pl_fast_conv_impl[];

/* The pl_backend entries with the same names. */
void pl_fast_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                  int lda, const float *b, int ldb, float beta, float *c, int ldc);
int pl_fast_conv2d_plan(const pl_conv2d_desc *d, void **plan, pl_err *err);
void pl_fast_conv2d_plan_free(void *plan);
int pl_fast_conv2d_fwd(void *plan, const float *x, const float *w, const float *b, float *y);
int pl_fast_conv2d_bwd(void *plan, const float *x, const float *w, const float *dy, float *dx,
                       float *dw, float *db);
/* PL_OK if d went through pl_conv2d_desc_init (fast.c; both implementations
 * check it before planning), else PL_ERR_ARG. */
int pl_fast_conv2d_check(const pl_conv2d_desc *d, pl_err *err);
/* db [c_out] += sum of dy [n, c_out, h_out, w_out] over n, h, w (fast.c; the
 * same for both implementations). */
void pl_fast_conv_bias_bwd(const pl_conv2d_desc *d, const float *dy, float *db);

#endif
