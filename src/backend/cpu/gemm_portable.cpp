// Portable GEMM block via Eigen, used for the Portable SIMD level and for float64.
// Threading is done by the driver (gemm.cpp), so Eigen's own OpenMP parallelisation is disabled here.
#define EIGEN_DONT_PARALLELIZE
// Eigen's SSE packet typedefs trigger -Wignored-attributes noise on every build with GCC.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#include <Eigen/Core>
#pragma GCC diagnostic pop

#include "backend/cpu/gemm_kernels.h"

namespace rk::cpu::detail {
namespace {

template <typename T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using ConstMap = Eigen::Map<const RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using MutMap = Eigen::Map<RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

template <typename T>
void gemm_block(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  using Eigen::Index;
  MutMap<T> cm(c, static_cast<Index>(m), static_cast<Index>(n), Eigen::OuterStride<>(static_cast<Index>(ldc)));
  // Explicit zeroing (not multiplication) so NaN/Inf in an ignored C cannot leak through.
  if (beta == T(0)) {
    cm.setZero();
  } else if (beta != T(1)) {
    cm *= beta;
  }
  if (k == 0 || alpha == T(0)) return;
  const Index ar = static_cast<Index>(trans_a ? k : m), ac = static_cast<Index>(trans_a ? m : k);
  const Index br = static_cast<Index>(trans_b ? n : k), bc = static_cast<Index>(trans_b ? k : n);
  ConstMap<T> am(a, ar, ac, Eigen::OuterStride<>(static_cast<Index>(lda)));
  ConstMap<T> bm(b, br, bc, Eigen::OuterStride<>(static_cast<Index>(ldb)));
  if (!trans_a && !trans_b) cm.noalias() += alpha * am * bm;
  else if (trans_a && !trans_b) cm.noalias() += alpha * am.transpose() * bm;
  else if (!trans_a && trans_b) cm.noalias() += alpha * am * bm.transpose();
  else cm.noalias() += alpha * am.transpose() * bm.transpose();
}

}  // namespace

void sgemm_portable_block(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm_block<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void dgemm_portable_block(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                          int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  gemm_block<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace rk::cpu::detail
