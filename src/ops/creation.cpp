#include "ops/ops.h"

namespace rk::ops {

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  backend_of(t).fill(t, value);
  return t;
}

Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor zeros_like(const Tensor& t) { return full(t.shape(), 0.0, t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return full(t.shape(), 1.0, t.dtype(), t.device()); }
Tensor scalar(double value, DType dtype, Device device) { return full(Shape(), value, dtype, device); }

Tensor clone(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_of(x).copy(x, out);
  if (autograd::needs_grad({x}))
    autograd::record("clone", out, {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = Tensor::empty(x.shape(), dtype, x.device());
  backend_of(x).copy(x, out);
  if (is_floating(dtype) && is_floating(x.dtype()) && autograd::needs_grad({x})) {
    DType from = x.dtype();
    autograd::record("cast", out, {x}, [from](const Tensor& g) { return std::vector<Tensor>{cast(g, from)}; });
  }
  return out;
}

Tensor to_device(const Tensor& x, Device device) {
  if (x.device() == device) return x;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), device);
  // Of the two backends, the non-CPU one knows how to cross (CPU<->CUDA copies live there).
  Backend& b = device.type == DeviceType::CPU ? backend_of(x) : backend_for(device);
  b.copy(x, out);
  if (is_floating(x.dtype()) && autograd::needs_grad({x})) {
    const Device from = x.device();
    autograd::record("to_device", out, {x}, [from](const Tensor& g) { return std::vector<Tensor>{to_device(g, from)}; });
  }
  return out;
}

Tensor random_uniform(const Shape& shape, double lo, double hi, DType dtype, Device device) {
  if (!(hi > lo)) throw ValueError("random_uniform needs maxval > minval, got [" + std::to_string(lo) + ", " +
                                   std::to_string(hi) + ")");
  Tensor t = Tensor::empty(shape, dtype, device);
  backend_of(t).random_uniform(t, lo, hi, default_generator());
  return t;
}

Tensor random_normal(const Shape& shape, double mean, double stddev, DType dtype, Device device) {
  if (!(stddev >= 0)) throw ValueError("random_normal needs stddev >= 0, got " + std::to_string(stddev));
  Tensor t = Tensor::empty(shape, dtype, device);
  backend_of(t).random_normal(t, mean, stddev, default_generator());
  return t;
}

}  // namespace rk::ops
