// gemm_eigen.cc — the fast backend's SGEMM without oneDNN (PL_DNNL=OFF):
// Eigen's blocked, vectorised GEMM behind a C entry point, single-threaded
// (EIGEN_DONT_PARALLELIZE: Eigen's threads spin-wait for each other, which
// on a loaded machine cost 5x; fast_conv_gemm.c splits products itself).
// Eigen is header-only, so only this product is compiled into the binary.
//
// Built with -fno-exceptions -fno-rtti -fno-threadsafe-statics, so the
// object needs nothing from libstdc++ (whose static unwinder would need
// GLIBC_2.35, newer than Amazon Linux 2023's): Eigen's one-time static
// set-up (cache sizes) runs under pthread_once instead of C++ guards.
#include <pthread.h>

#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Core>

#include "backend/gemm_eigen.h"

namespace {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CMap = Eigen::Map<const Mat, Eigen::Unaligned, Eigen::OuterStride<>>;
using MMap = Eigen::Map<Mat, Eigen::Unaligned, Eigen::OuterStride<>>;

template <typename A, typename B>
void product(MMap &c, const A &a, const B &b, float alpha, float beta)
{
    if (beta == 0.0f) {
        c.noalias() = alpha * a * b; // overwrites: C's old contents (even NaN) are ignored
        return;
    }
    if (beta != 1.0f)
        c *= beta;
    c.noalias() += alpha * a * b;
}

pthread_once_t g_once = PTHREAD_ONCE_INIT;

void init_once() { Eigen::initParallel(); }

} // namespace

extern "C" void pl_eigen_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                               const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    pthread_once(&g_once, init_once);
    // Stored shapes: A is [m,k] ([k,m] when transposed), B is [k,n] ([n,k]).
    CMap ma(a, trans_a ? k : m, trans_a ? m : k, Eigen::OuterStride<>(lda));
    CMap mb(b, trans_b ? n : k, trans_b ? k : n, Eigen::OuterStride<>(ldb));
    MMap mc(c, m, n, Eigen::OuterStride<>(ldc));
    if (trans_a && trans_b)
        product(mc, ma.transpose(), mb.transpose(), alpha, beta);
    else if (trans_a)
        product(mc, ma.transpose(), mb, alpha, beta);
    else if (trans_b)
        product(mc, ma, mb.transpose(), alpha, beta);
    else
        product(mc, ma, mb, alpha, beta);
}
