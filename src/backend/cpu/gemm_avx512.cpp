// AVX-512 float32 GEMM building blocks (packing + micro-kernels).
// Headers are included before the target pragma so no inline code from them is compiled for AVX-512;
// everything except sgemm_kernels_avx512() has internal linkage (see gemm_kernels.h).
#include <cstdint>
#include <immintrin.h>

#include "backend/cpu/gemm_kernels.h"

#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")

namespace rk::cpu::detail {
namespace {

// 14x32 micro-tile: 28 zmm accumulators + 2 B vectors, A broadcast from memory as an FMA operand.
// Per k step: 28 FMAs (14 cycles on two FMA ports) against 2 loads + 14 broadcasts, so it stays FMA-bound.
constexpr int kMR = 14;
constexpr int kNV = 2;
constexpr int kNR = 16 * kNV;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

inline __mmask16 lane_mask(int64_t n) { return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u); }

// In-register 16x16 transpose: r[i] lane j -> r[j] lane i.
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4g+c] holds rows 4g..4g+3 of column (4*lane + c) in each 128-bit lane.
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {
    u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
    u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
  }
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
    const __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
    const __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    r[c + 8] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
    r[c + 4] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    r[c + 12] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
  }
}

// Loads `rows` (<= 16) rows of `cols` (<= 16) floats each, transposes, and stores column q (q < cols) as
// `out_lanes` floats at dst + q * dst_stride. Missing rows read as zero so panels come out zero-padded.
inline void transpose_block(const float* src, int64_t ld, int rows, int cols, float* dst, int64_t dst_stride,
                            __mmask16 out_mask) {
  __m512 r[16];
  const __mmask16 in_mask = lane_mask(cols);
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_maskz_loadu_ps(in_mask, src + i * ld) : _mm512_setzero_ps();
  transpose16(r);
  for (int q = 0; q < cols; ++q) _mm512_mask_storeu_ps(dst + q * dst_stride, out_mask, r[q]);
}

void pack_a(bool trans, int64_t mc, int64_t kc, const float* a, int64_t lda, float* dst) {
  const __mmask16 out_mask = lane_mask(kMR);
  for (int64_t i0 = 0; i0 < mc; i0 += kMR) {
    const int rows = static_cast<int>(min64(kMR, mc - i0));
    float* d = dst + i0 * kc;
    if (!trans) {
      const float* s = a + i0 * lda;
      for (int64_t p = 0; p < kc; p += 16) {
        transpose_block(s + p, lda, rows, static_cast<int>(min64(16, kc - p)), d + p * kMR, kMR, out_mask);
      }
    } else {
      // op(A) columns are contiguous in storage: a straight masked copy per k.
      const __mmask16 in_mask = lane_mask(rows);
      const float* s = a + i0;
      for (int64_t p = 0; p < kc; ++p) {
        _mm512_mask_storeu_ps(d + p * kMR, out_mask, _mm512_maskz_loadu_ps(in_mask, s + p * lda));
      }
    }
  }
}

void pack_b(bool trans, int64_t kc, int64_t nc, const float* b, int64_t ldb, float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += kNR) {
    const int64_t cols = min64(kNR, nc - j0);
    float* d = dst + j0 * kc;
    if (!trans) {
      __mmask16 m[kNV];
      for (int v = 0; v < kNV; ++v) m[v] = cols > 16 * v ? lane_mask(cols - 16 * v) : 0;
      const float* s = b + j0;
      for (int64_t p = 0; p < kc; ++p) {
#pragma GCC unroll 4
        for (int v = 0; v < kNV; ++v) {
          _mm512_store_ps(d + p * kNR + 16 * v, _mm512_maskz_loadu_ps(m[v], s + p * ldb + 16 * v));
        }
      }
    } else {
      for (int v = 0; v < kNV; ++v) {
        const int rows = static_cast<int>(cols > 16 * v ? min64(16, cols - 16 * v) : 0);
        const float* s = b + (j0 + 16 * v) * ldb;
        for (int64_t p = 0; p < kc; p += 16) {
          transpose_block(s + p, ldb, rows, static_cast<int>(min64(16, kc - p)), d + p * kNR + 16 * v, kNR,
                          static_cast<__mmask16>(0xFFFF));
        }
      }
    }
  }
}

template <int R, int V>
void micro_kernel(int64_t kc, const float* __restrict pa, const float* __restrict pb, float* __restrict c,
                  int64_t ldc, float alpha, float beta, int cols) {
  __m512 acc[R][V];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  }
  // Pull the C tile toward L1 while the k loop runs so the final read-modify-write does not stall.
  if (beta != 0.0f) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
  }
  for (int64_t p = 0; p < kc; ++p) {
    __m512 bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) bv[v] = _mm512_load_ps(pb + 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512 av = _mm512_set1_ps(pa[i]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
    }
    pa += kMR;
    pb += kNR;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
  const __mmask16 last = lane_mask(cols - 16 * (V - 1));
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    float* cr = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const __mmask16 mk = v == V - 1 ? last : static_cast<__mmask16>(0xFFFF);
      __m512 r = _mm512_mul_ps(acc[i][v], va);
      if (beta == 1.0f) {
        r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mk, cr + 16 * v));
      } else if (beta != 0.0f) {
        r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mk, cr + 16 * v), r);
      }
      _mm512_mask_storeu_ps(cr + 16 * v, mk, r);
    }
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
  // Row panels outermost: the 14 x kc A panel stays in L1 while all B panels stream from L2.
  for (int64_t i0 = 0; i0 < mc; i0 += kMR) {
    const int rows = static_cast<int>(min64(kMR, mc - i0));
    const float* ap = pa + i0 * kc;
    for (int64_t j0 = 0; j0 < nc; j0 += kNR) {
      const int cols = static_cast<int>(min64(kNR, nc - j0));
      float* cp = c + i0 * ldc + j0;
      if (rows == kMR && cols == kNR) {
        micro_kernel<kMR, kNV>(kc, ap, pb + j0 * kc, cp, ldc, alpha, beta, cols);
      } else {
        t.fn[rows - 1][(cols + 15) / 16 - 1](kc, ap, pb + j0 * kc, cp, ldc, alpha, beta, cols);
      }
    }
  }
}

}  // namespace

const SgemmKernels& sgemm_kernels_avx512() {
  static const SgemmKernels k{kMR, kNR, 16, &pack_a, &pack_b, &macro};
  return k;
}

}  // namespace rk::cpu::detail
