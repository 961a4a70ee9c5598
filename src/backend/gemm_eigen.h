/* gemm_eigen.h — C entry point of the Eigen SGEMM (gemm_eigen.cc), used by
 * the fast backend when built without oneDNN (PL_DNNL=OFF). Private. */
#ifndef PEERLESS_GEMM_EIGEN_H
#define PEERLESS_GEMM_EIGEN_H

#ifdef __cplusplus
extern "C" {
#endif

/* C[m,n] = alpha * op(A)[m,k] op(B)[k,n] + beta * C, row-major with row
 * strides lda/ldb/ldc; trans_a: A stored [k,m]; trans_b: B stored [n,k].
 * beta == 0 overwrites C without reading it. m or n <= 0: no-op.
 * Runs on the calling thread. */
void pl_eigen_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc);

#ifdef __cplusplus
}
#endif

#endif
