// Internal interface between the portable GEMM driver (gemm.cpp) and the per-ISA translation units.
// ISA TUs export only the functions declared here; everything else in them has internal linkage so that
// code compiled for AVX2/AVX-512 can never be picked by the linker for a portable caller.
#pragma once

#include <cstdint>

namespace rk::cpu::detail {

/// Function table of one ISA's float32 GEMM building blocks; the pointed-to functions live in that ISA's TU.
struct SgemmKernels {
  /// Rows of a packed A micro-panel (micro-tile height).
  int mr;
  /// Columns of a packed B micro-panel (micro-tile width).
  int nr;
  /// Column granularity at which a thread's n-range may start without losing efficiency (one vector).
  int n_gran;
  /// Packs op(A)[0:mc, 0:kc] into ceil(mc/mr) panels of mr*kc floats (k-major, mr contiguous rows per k) at dst.
  /// `a` points at op(A)(0,0) in storage: row-major [mc,kc] with stride lda, or [kc,mc] when trans.
  void (*pack_a)(bool trans, int64_t mc, int64_t kc, const float* a, int64_t lda, float* dst);
  /// Packs op(B)[0:kc, 0:nc] into ceil(nc/nr) panels of kc*nr floats (nr contiguous columns per k), zero-padded.
  /// `b` points at op(B)(0,0) in storage: row-major [kc,nc] with stride ldb, or [nc,kc] when trans. dst is 64-byte aligned.
  void (*pack_b)(bool trans, int64_t kc, int64_t nc, const float* b, int64_t ldb, float* dst);
  /// C[mc,nc] = alpha * Apacked * Bpacked + beta * C (beta == 0: C is not read). Buffers as written by pack_a/pack_b.
  void (*macro)(int64_t mc, int64_t nc, int64_t kc, float alpha, const float* pa, const float* pb, float beta, float* c,
                int64_t ldc);
};

/// AVX2+FMA kernels; only call when the CPU supports them.
const SgemmKernels& sgemm_kernels_avx2();
/// AVX-512F/BW/DQ/VL kernels; only call when the CPU supports them.
const SgemmKernels& sgemm_kernels_avx512();

/// Single-threaded portable (Eigen) C = alpha*op(A)*op(B) + beta*C on a row-major block; beta == 0 ignores C.
void sgemm_portable_block(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
/// Double-precision counterpart of sgemm_portable_block.
void dgemm_portable_block(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                          int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

}  // namespace rk::cpu::detail
