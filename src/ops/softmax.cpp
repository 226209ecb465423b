// softmax and log_softmax along one axis; the backward uses the forward output only.
#include "ops/ops.h"

namespace rk::ops {

namespace {

Tensor softmax_impl(const char* name, const Tensor& x, int axis, bool log) {
  if (!is_floating(x.dtype())) throw_dtype_error(name, x.dtype(), "float32 or float64");
  int ax = normalize_axis(axis, x.rank(), name);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_of(x).softmax(x, y, ax, log);
  if (autograd::needs_grad({x})) {
    Tensor yd = y.detach();
    autograd::record(name, y, {x}, [yd, ax, log](const Tensor& g) {
      Tensor gx = Tensor::empty(yd.shape(), yd.dtype(), yd.device());
      backend_of(yd).softmax_backward(yd, g, gx, ax, log);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int axis) { return softmax_impl("softmax", x, axis, false); }

Tensor log_softmax(const Tensor& x, int axis) { return softmax_impl("log_softmax", x, axis, true); }

}  // namespace rk::ops
