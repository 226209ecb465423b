// Indexing ops: take (gather along an axis) and one_hot.
//
// Index tensors are validated here, by reading their values: the checks (integral floats,
// wrapping negative indices, naming the offending index as the user wrote it) need the
// values, and index tensors are small next to the data they index. Only CPU tensors exist
// in this build; a device backend would copy the indices to the host for this pass.
#include <cmath>
#include <string>

#include "ops/ops.h"

namespace rk::ops {

namespace {

std::string num(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  return std::to_string(v);
}

// The indices of `idx` as a fresh int32 tensor of the same shape, accepting int32 or floats
// that hold whole numbers. `map(v)` returns the stored index for an integral value v (already
// range-checked as it sees fit); it is called once per element. The result lives on `device`.
template <typename Map>
Tensor index_tensor(const Tensor& idx0, const char* op, Device device, Map map) {
  // Indices are validated on the host (each one may raise an error naming its position); the
  // checked copy goes back to the device the indices came from.
  const Tensor idx = to_device(idx0.detach(), cpu_device());
  Tensor out = Tensor::empty(idx.shape(), DType::Int32, cpu_device());
  int32_t* o = out.data<int32_t>();
  const int64_t n = idx.numel();
  switch (idx.dtype()) {
    case DType::Int32: {
      const int32_t* p = idx.data<int32_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = map(static_cast<double>(p[i]));
      break;
    }
    case DType::Float32:
    case DType::Float64: {
      const bool f32 = idx.dtype() == DType::Float32;
      const float* pf = f32 ? idx.data<float>() : nullptr;
      const double* pd = f32 ? nullptr : idx.data<double>();
      for (int64_t i = 0; i < n; ++i) {
        const double v = f32 ? static_cast<double>(pf[i]) : pd[i];
        if (!std::isfinite(v) || v != std::floor(v))
          throw ValueError(std::string(op) + ": indices must be whole numbers, got " + num(v) + " at flat position " +
                           std::to_string(i));
        o[i] = map(v);
      }
      break;
    }
    default:
      throw_dtype_error(op, idx.dtype(), "int32 (or integral float) indices");
  }
  return to_device(out, device);
}

}  // namespace

Tensor take(const Tensor& x, const Tensor& indices, int axis) {
  const int ax = normalize_axis(axis, x.rank(), "take");
  const int64_t n = x.size(ax);
  Tensor idx = index_tensor(indices, "take", x.device(), [&](double v) {
    if (v < -static_cast<double>(n) || v >= static_cast<double>(n))
      throw IndexError("take: index " + num(v) + " is out of bounds for axis " + std::to_string(ax) + " with size " +
                       std::to_string(n) + " (shape " + x.shape().str() + ")");
    return static_cast<int32_t>(v < 0 ? v + static_cast<double>(n) : v);
  });
  std::vector<int64_t> dims;
  const std::vector<int64_t>& xd = x.shape().dims();
  dims.insert(dims.end(), xd.begin(), xd.begin() + ax);
  dims.insert(dims.end(), idx.shape().dims().begin(), idx.shape().dims().end());
  dims.insert(dims.end(), xd.begin() + ax + 1, xd.end());
  Tensor out = Tensor::empty(Shape(dims), x.dtype(), x.device());
  backend_of(x).gather(x, idx, ax, out);
  if (is_floating(x.dtype()) && autograd::needs_grad({x})) {
    Shape xs = x.shape();
    autograd::record("take", out, {x}, [xs, idx, ax](const Tensor& g) {
      Tensor gx = zeros(xs, g.dtype(), g.device());
      backend_of(g).scatter_add(g, idx, ax, gx);
      return std::vector<Tensor>{gx};
    });
  }
  return out;
}

Tensor one_hot(const Tensor& indices, int64_t depth, DType dtype) {
  if (depth < 1) throw ValueError("one_hot: depth must be >= 1, got " + std::to_string(depth));
  // Out-of-range classes give an all-zero row (as tf.one_hot); anything beyond int32 is out of
  // range too, so it maps to -1 rather than overflowing the cast.
  Tensor idx = index_tensor(indices, "one_hot", indices.device(), [](double v) {
    return v < 0 || v > 2147483647.0 ? int32_t{-1} : static_cast<int32_t>(v);
  });
  std::vector<int64_t> dims = indices.shape().dims();
  dims.push_back(depth);
  Tensor out = Tensor::empty(Shape(dims), dtype, indices.device());
  backend_of(out).one_hot(idx, out);
  return out;
}

}  // namespace rk::ops
