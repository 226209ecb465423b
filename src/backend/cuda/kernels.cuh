// Helpers shared by the CUDA kernels: launch geometry, typed device pointers, NumPy broadcasting
// as per-operand strides, and the dtype conversions of the CPU backend (so results match it).
// Non-template __device__ functions in the .cu files are declared inline: otherwise nvcc emits
// a host stub for each that calls exit(), which R CMD check reports as a WARNING.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "backend/cuda/check.cuh"
#include "core/tensor.h"

namespace rk::cuda {

constexpr int kThreads = 256;
/// Most dimensions a broadcasting or permuting kernel handles (more throws UnsupportedError).
constexpr int kMaxDims = 8;

/// Blocks of kThreads for a grid-stride loop over n elements.
inline unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 16)));
}

/// Typed device pointer of t's first element (no dtype check: callers dispatch on dtype).
template <typename T>
T* dptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

/// Output extents and the element strides of up to three broadcast inputs (0 along expanded axes).
struct BcastPlan {
  int nd = 0;
  int64_t dims[kMaxDims];
  int64_t st[3][kMaxDims];
};

/// Builds the plan of `nin` inputs broadcast to `out` (NumPy rules; shapes already checked).
BcastPlan make_bcast_plan(const Shape& out, const Shape* const* ins, int nin);

/// Offsets of output element i (< product of p.dims) in each input of the plan. The outermost
/// axis takes the quotient without a division: 64-bit division costs ~40 instructions on the GPU,
/// and the common same-shape case (one merged axis) then needs none at all.
__device__ inline void bcast_offsets(const BcastPlan& p, int64_t i, int nin, int64_t* off) {
  for (int j = 0; j < nin; ++j) off[j] = 0;
  for (int d = p.nd - 1; d > 0; --d) {
    const int64_t c = i % p.dims[d];
    i /= p.dims[d];
    for (int j = 0; j < nin; ++j) off[j] += c * p.st[j][d];
  }
  for (int j = 0; j < nin; ++j) off[j] += i * p.st[j][0];
}

/// Conversion to D as the CPU backend does it: int32 truncates (NaN -> 0, saturating), bool is v != 0.
template <typename D, typename S>
__host__ __device__ inline D convert_to(S v) {
  if constexpr (std::is_same_v<D, uint8_t>) {
    return v != S(0) ? 1 : 0;
  } else if constexpr (std::is_same_v<D, int32_t> && std::is_floating_point_v<S>) {
    const double d = static_cast<double>(v);
    if (d != d) return 0;
    if (d >= 2147483647.0) return 2147483647;
    if (d <= -2147483648.0) return -2147483647 - 1;
    return static_cast<int32_t>(d);
  } else {
    return static_cast<D>(v);
  }
}

/// Throws UnsupportedError unless t lives on CUDA device `index`.
void require_on(const Tensor& t, int index, const char* op);

}  // namespace rk::cuda

namespace rk::cuda {
class DeviceContext;
/// Throws IndexError "<op>: index v is out of bounds for an axis of size n" for the first int32
/// index outside [0, n) (one small read-back; run before any kernel writes), or TypeError for
/// non-int32 indices.
void check_indices(const Tensor& idx, int64_t n, const char* op, DeviceContext& ctx);
}  // namespace rk::cuda
