// Dense matrix multiplication on the CPU (row-major, BLAS-like semantics).
#pragma once

#include <cstdint>

namespace rk::cpu {

/// C = alpha * op(A) * op(B) + beta * C, row-major; op(A) is [m,k], op(B) is [k,n]; lda/ldb/ldc are row strides in elements. Threaded with OpenMP; beta == 0 ignores C's old contents (NaN-safe).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

/// Double-precision sgemm: C = alpha * op(A) * op(B) + beta * C, same layout, threading and beta == 0 rules.
void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
           const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

/// Batched: batch independent products; a/b/c advance by stride_a/stride_b/stride_c elements per batch item (stride 0 = broadcast operand).
void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b,
                   float beta, float* c, int64_t ldc, int64_t stride_c);

/// Double-precision sgemm_batched (same stride and broadcast rules).
void dgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, double alpha,
                   const double* a, int64_t lda, int64_t stride_a, const double* b, int64_t ldb, int64_t stride_b,
                   double beta, double* c, int64_t ldc, int64_t stride_c);

}  // namespace rk::cpu
