// AVX2 float32 elementwise kernels. Headers come before the target pragma so that none of their inline
// code is compiled for AVX2; everything but the entry points of elementwise_simd.h has internal linkage.
// Only IEEE add/sub/mul/max/compare are used (no FMA contraction), so results equal the portable path bit for bit.
#include <immintrin.h>

#include <cstdint>

#include "backend/cpu/elementwise_simd.h"

#pragma GCC target("avx2,fma")

namespace rk::cpu::simd {
namespace {

__m256 vop(F32BinOp op, __m256 x, __m256 y) {
  switch (op) {
    case F32BinOp::Add: return _mm256_add_ps(x, y);
    case F32BinOp::Sub: return _mm256_sub_ps(x, y);
    default: return _mm256_mul_ps(x, y);
  }
}

float sop(F32BinOp op, float x, float y) {
  switch (op) {
    case F32BinOp::Add: return x + y;
    case F32BinOp::Sub: return x - y;
    default: return x * y;
  }
}

// One loop per op keeps the switch out of the hot loop.
template <int OP>
void binary_loop(const float* a, const float* b, float* out, int64_t n) {
  const F32BinOp op = static_cast<F32BinOp>(OP);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 x0 = _mm256_loadu_ps(a + i), x1 = _mm256_loadu_ps(a + i + 8);
    __m256 x2 = _mm256_loadu_ps(a + i + 16), x3 = _mm256_loadu_ps(a + i + 24);
    __m256 y0 = _mm256_loadu_ps(b + i), y1 = _mm256_loadu_ps(b + i + 8);
    __m256 y2 = _mm256_loadu_ps(b + i + 16), y3 = _mm256_loadu_ps(b + i + 24);
    _mm256_storeu_ps(out + i, vop(op, x0, y0));
    _mm256_storeu_ps(out + i + 8, vop(op, x1, y1));
    _mm256_storeu_ps(out + i + 16, vop(op, x2, y2));
    _mm256_storeu_ps(out + i + 24, vop(op, x3, y3));
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, vop(op, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  for (; i < n; ++i) out[i] = sop(op, a[i], b[i]);
}

template <int OP, bool SCALAR_FIRST>
void scalar_loop(const float* a, float s, float* out, int64_t n) {
  const F32BinOp op = static_cast<F32BinOp>(OP);
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 x0 = _mm256_loadu_ps(a + i), x1 = _mm256_loadu_ps(a + i + 8);
    _mm256_storeu_ps(out + i, SCALAR_FIRST ? vop(op, vs, x0) : vop(op, x0, vs));
    _mm256_storeu_ps(out + i + 8, SCALAR_FIRST ? vop(op, vs, x1) : vop(op, x1, vs));
  }
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_loadu_ps(a + i);
    _mm256_storeu_ps(out + i, SCALAR_FIRST ? vop(op, vs, x) : vop(op, x, vs));
  }
  for (; i < n; ++i) out[i] = SCALAR_FIRST ? sop(op, s, a[i]) : sop(op, a[i], s);
}

template <int OP, bool ROW_FIRST>
void rows_loop(const float* a, const float* row, float* out, int64_t rows, int64_t cols) {
  const F32BinOp op = static_cast<F32BinOp>(OP);
  for (int64_t r = 0; r < rows; ++r) {
    const float* ar = a + r * cols;
    float* orow = out + r * cols;
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
      __m256 x = _mm256_loadu_ps(ar + c), y = _mm256_loadu_ps(row + c);
      _mm256_storeu_ps(orow + c, ROW_FIRST ? vop(op, y, x) : vop(op, x, y));
    }
    for (; c < cols; ++c) orow[c] = ROW_FIRST ? sop(op, row[c], ar[c]) : sop(op, ar[c], row[c]);
  }
}

}  // namespace

void ew_avx2_binary_f32(F32BinOp op, const float* a, const float* b, float* out, int64_t n) {
  switch (op) {
    case F32BinOp::Add: return binary_loop<0>(a, b, out, n);
    case F32BinOp::Sub: return binary_loop<1>(a, b, out, n);
    default: return binary_loop<2>(a, b, out, n);
  }
}

void ew_avx2_binary_scalar_f32(F32BinOp op, const float* a, float s, bool scalar_first, float* out, int64_t n) {
  switch (op) {
    case F32BinOp::Add: return scalar_loop<0, false>(a, s, out, n);  // commutative
    case F32BinOp::Sub:
      return scalar_first ? scalar_loop<1, true>(a, s, out, n) : scalar_loop<1, false>(a, s, out, n);
    default: return scalar_loop<2, false>(a, s, out, n);
  }
}

void ew_avx2_binary_rows_f32(F32BinOp op, const float* a, const float* row, bool row_first, float* out,
                             int64_t rows, int64_t cols) {
  switch (op) {
    case F32BinOp::Add: return rows_loop<0, false>(a, row, out, rows, cols);
    case F32BinOp::Sub:
      return row_first ? rows_loop<1, true>(a, row, out, rows, cols) : rows_loop<1, false>(a, row, out, rows, cols);
    default: return rows_loop<2, false>(a, row, out, rows, cols);
  }
}

void ew_avx2_relu_f32(const float* x, float* y, int64_t n) {
  // max_ps returns its second operand when either is NaN, so max(0, x) keeps NaN and -0.0 like `x < 0 ? 0 : x`.
  const __m256 zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(y + i, _mm256_max_ps(zero, _mm256_loadu_ps(x + i)));
    _mm256_storeu_ps(y + i + 8, _mm256_max_ps(zero, _mm256_loadu_ps(x + i + 8)));
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_max_ps(zero, _mm256_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void ew_avx2_relu_backward_f32(const float* x, const float* gy, float* gx, int64_t n) {
  const __m256 zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 m = _mm256_cmp_ps(_mm256_loadu_ps(x + i), zero, _CMP_GT_OQ);
    _mm256_storeu_ps(gx + i, _mm256_and_ps(m, _mm256_loadu_ps(gy + i)));
  }
  for (; i < n; ++i) gx[i] = x[i] > 0.0f ? gy[i] : 0.0f;
}

}  // namespace rk::cpu::simd
