// Helpers shared by the CUDA kernels: launch geometry, typed device pointers, NumPy broadcasting
// as per-operand strides, and the dtype conversions of the CPU backend (so results match it).
// Non-template __device__ functions in the .cu files are declared inline: otherwise nvcc emits
// a host stub for each that calls exit(), which R CMD check reports as a WARNING.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
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

/// Offsets of output element i (< product of p.dims) in each input of the plan, in index type I
/// (uint32_t when every offset fits: 32-bit division is several times cheaper than 64-bit on the
/// GPU). The outermost axis takes the quotient without a division, so the common same-shape case
/// (one merged axis) needs none at all.
template <typename I>
__device__ inline void bcast_offsets(const BcastPlan& p, I i, int nin, I* off) {
  for (int j = 0; j < nin; ++j) off[j] = 0;
  for (int d = p.nd - 1; d > 0; --d) {
    const I dim = static_cast<I>(p.dims[d]);
    const I c = i % dim;
    i /= dim;
    for (int j = 0; j < nin; ++j) off[j] += c * static_cast<I>(p.st[j][d]);
  }
  for (int j = 0; j < nin; ++j) off[j] += i * static_cast<I>(p.st[j][0]);
}

/// True when n output elements and inputs of the given element counts can be indexed in uint32_t.
inline bool fits_u32(int64_t n, std::initializer_list<int64_t> input_numels) {
  if (n >= (int64_t(1) << 31)) return false;
  for (int64_t m : input_numels)
    if (m >= (int64_t(1) << 31)) return false;
  return true;
}

/// Runs f(I{}) with I = uint32_t when `small`, else int64_t (index type of a kernel).
template <typename F>
void with_index_type(bool small, F f) {
  if (small) f(uint32_t{});
  else f(int64_t{});
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
