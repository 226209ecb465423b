// AVX2+FMA float32 GEMM building blocks (packing + micro-kernels).
// Headers are included before the target pragma so no inline code from them is compiled for AVX2;
// everything except sgemm_kernels_avx2() has internal linkage (see gemm_kernels.h).
#include <cstdint>
#include <immintrin.h>

#include "backend/cpu/gemm_kernels.h"

#pragma GCC target("avx2,fma")

namespace rk::cpu::detail {
namespace {

// 6x16 micro-tile: 12 ymm accumulators + 2 B vectors + 1 broadcast fit the 16 architectural ymm registers.
constexpr int kMR = 6;
constexpr int kNV = 2;
constexpr int kNR = 8 * kNV;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

void pack_a(bool trans, int64_t mc, int64_t kc, const float* a, int64_t lda, float* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += kMR) {
    const int rows = static_cast<int>(min64(kMR, mc - i0));
    float* d = dst + i0 * kc;
    if (!trans) {
      // Row-wise traversal keeps source reads sequential; the scattered writes hit a small L1-resident panel.
      for (int i = 0; i < rows; ++i) {
        const float* s = a + (i0 + i) * lda;
        for (int64_t p = 0; p < kc; ++p) d[p * kMR + i] = s[p];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        const float* s = a + p * lda + i0;
        for (int i = 0; i < rows; ++i) d[p * kMR + i] = s[i];
      }
    }
    for (int i = rows; i < kMR; ++i) {
      for (int64_t p = 0; p < kc; ++p) d[p * kMR + i] = 0.0f;
    }
  }
}

void pack_b(bool trans, int64_t kc, int64_t nc, const float* b, int64_t ldb, float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += kNR) {
    const int cols = static_cast<int>(min64(kNR, nc - j0));
    float* d = dst + j0 * kc;
    if (!trans) {
      for (int64_t p = 0; p < kc; ++p) {
        const float* s = b + p * ldb + j0;
        float* dp = d + p * kNR;
        if (cols == kNR) {
          for (int v = 0; v < kNV; ++v) _mm256_store_ps(dp + 8 * v, _mm256_loadu_ps(s + 8 * v));
        } else {
          for (int j = 0; j < cols; ++j) dp[j] = s[j];
          for (int j = cols; j < kNR; ++j) dp[j] = 0.0f;
        }
      }
    } else {
      for (int j = 0; j < cols; ++j) {
        const float* s = b + (j0 + j) * ldb;
        for (int64_t p = 0; p < kc; ++p) d[p * kNR + j] = s[p];
      }
      for (int j = cols; j < kNR; ++j) {
        for (int64_t p = 0; p < kc; ++p) d[p * kNR + j] = 0.0f;
      }
    }
  }
}

template <int R, int V>
void micro_kernel(int64_t kc, const float* __restrict pa, const float* __restrict pb, float* __restrict c,
                  int64_t ldc, float alpha, float beta, int cols) {
  __m256 acc[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[i][v] = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < kc; ++p) {
    __m256 bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) bv[v] = _mm256_load_ps(pb + 8 * v);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m256 av = _mm256_broadcast_ss(pa + i);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
    }
    pa += kMR;
    pb += kNR;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  if (cols == 8 * V) {
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      float* cr = c + i * ldc;
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        __m256 r = _mm256_mul_ps(acc[i][v], va);
        if (beta == 1.0f) r = _mm256_add_ps(r, _mm256_loadu_ps(cr + 8 * v));
        else if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8 * v), r);
        _mm256_storeu_ps(cr + 8 * v, r);
      }
    }
    return;
  }
  // Ragged right edge: spill the tile and update only the valid columns.
  alignas(32) float tile[R][8 * V];
  for (int i = 0; i < R; ++i) {
    for (int v = 0; v < V; ++v) _mm256_store_ps(&tile[i][8 * v], _mm256_mul_ps(acc[i][v], va));
  }
  for (int i = 0; i < R; ++i) {
    float* cr = c + i * ldc;
    for (int j = 0; j < cols; ++j) cr[j] = beta == 0.0f ? tile[i][j] : tile[i][j] + beta * cr[j];
  }
}

using KernelFn = void (*)(int64_t, const float*, const float*, float*, int64_t, float, float, int);

template <int R>
struct RowTable {
  static void fill(KernelFn (*t)[kNV]) {
    t[R - 1][0] = &micro_kernel<R, 1>;
    t[R - 1][1] = &micro_kernel<R, 2>;
    RowTable<R - 1>::fill(t);
  }
};
template <>
struct RowTable<0> {
  static void fill(KernelFn (*)[kNV]) {}
};

struct KernelTable {
  KernelFn fn[kMR][kNV];
  KernelTable() { RowTable<kMR>::fill(fn); }
};

const KernelTable& kernel_table() {
  static const KernelTable table;
  return table;
}

void macro(int64_t mc, int64_t nc, int64_t kc, float alpha, const float* pa, const float* pb, float beta, float* c,
           int64_t ldc) {
  const KernelTable& t = kernel_table();
  for (int64_t i0 = 0; i0 < mc; i0 += kMR) {
    const int rows = static_cast<int>(min64(kMR, mc - i0));
    const float* ap = pa + i0 * kc;
    for (int64_t j0 = 0; j0 < nc; j0 += kNR) {
      const int cols = static_cast<int>(min64(kNR, nc - j0));
      float* cp = c + i0 * ldc + j0;
      if (rows == kMR && cols == kNR) {
        micro_kernel<kMR, kNV>(kc, ap, pb + j0 * kc, cp, ldc, alpha, beta, cols);
      } else {
        t.fn[rows - 1][(cols + 7) / 8 - 1](kc, ap, pb + j0 * kc, cp, ldc, alpha, beta, cols);
      }
    }
  }
}

}  // namespace

const SgemmKernels& sgemm_kernels_avx2() {
  static const SgemmKernels k{kMR, kNR, 8, &pack_a, &pack_b, &macro};
  return k;
}

}  // namespace rk::cpu::detail
