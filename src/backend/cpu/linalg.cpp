// CPU GEMM entry point: maps the backend's contiguous-matrix contract onto the
// row-major BLAS-style kernels in gemm.h.
#include <algorithm>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/gemm.h"

namespace rk::cpu {

namespace {

template <typename T>
void scale_only(int64_t batch, int64_t mn, T beta, T* c, int64_t stride_c) {
  // k == 0: the product is empty, so C = beta * C (beta == 0 must not read C, which may hold NaN).
  for (int64_t i = 0; i < batch; ++i) {
    T* ci = c + i * stride_c;
    if (beta == T(0)) std::fill(ci, ci + mn, T(0));
    else
      for (int64_t j = 0; j < mn; ++j) ci[j] *= beta;
  }
}

}  // namespace

void CpuBackend::gemm(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, double alpha,
                      const Tensor& a, int64_t stride_a, const Tensor& b, int64_t stride_b, double beta, Tensor& c,
                      int64_t stride_c) {
  if (!is_floating(a.dtype())) throw_dtype_error("gemm", a.dtype(), "float32 or float64");
  if (b.dtype() != a.dtype()) throw_dtype_error("gemm (second operand)", b.dtype(), dtype_name(a.dtype()));
  if (c.dtype() != a.dtype()) throw_dtype_error("gemm (output)", c.dtype(), dtype_name(a.dtype()));
  if (batch <= 0 || m <= 0 || n <= 0) return;
  // Stored layouts: A is [m,k] (or [k,m] when transposed), B is [k,n] (or [n,k]), C is [m,n].
  int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n, ldc = n;
  if (a.dtype() == DType::Float32) {
    if (k <= 0) return scale_only(batch, m * n, static_cast<float>(beta), c.data<float>(), stride_c);
    sgemm_batched(trans_a, trans_b, batch, m, n, k, static_cast<float>(alpha), a.data<float>(), lda, stride_a,
                  b.data<float>(), ldb, stride_b, static_cast<float>(beta), c.data<float>(), ldc, stride_c);
  } else {
    if (k <= 0) return scale_only(batch, m * n, beta, c.data<double>(), stride_c);
    dgemm_batched(trans_a, trans_b, batch, m, n, k, alpha, a.data<double>(), lda, stride_a, b.data<double>(), ldb,
                  stride_b, beta, c.data<double>(), ldc, stride_c);
  }
}

}  // namespace rk::cpu
