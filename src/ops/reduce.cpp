// Reductions over axes (sum, mean, max, min, prod, logsumexp) and argmax/argmin.
// Integer and bool inputs reduce in int32 (mean and logsumexp in float32); only
// floating inputs carry gradients.
#include <cmath>
#include <string>

#include "ops/ops.h"

namespace rk::ops {

namespace {

struct Reduced {
  Tensor out;
  std::vector<int> axes;  // normalised, sorted
};

// Output dtype of a reduction: floats keep theirs; ints and bools go to int32, or float32
// where the result is not an integer (mean, logsumexp).
DType reduce_dtype(ReduceOp op, DType in) {
  if (is_floating(in)) return in;
  return (op == ReduceOp::Mean || op == ReduceOp::LogSumExp) ? DType::Float32 : DType::Int32;
}

Reduced reduce_forward(const char* name, ReduceOp op, const Tensor& x, const std::vector<int>& axes_in,
                       bool keepdims) {
  Reduced r;
  r.axes = normalize_axes(axes_in, x.rank(), name);
  DType od = reduce_dtype(op, x.dtype());
  r.out = Tensor::empty(reduced_shape(x.shape(), r.axes, keepdims), od, x.device());
  Backend& be = backend_of(x);
  if (r.axes.empty()) be.copy(x, r.out);  // a rank-0 input: every reduction is the identity map
  else be.reduce(op, x, r.axes, r.out);
  return r;
}

// g (the reduced shape, with or without kept axes) broadcast back to `shape`.
Tensor expand_grad(const Tensor& g, const Shape& shape, const std::vector<int>& axes) {
  Tensor gk = g.view_as_shape(reduced_shape(shape, axes, true));
  Tensor out = Tensor::empty(shape, g.dtype(), g.device());
  backend_of(g).broadcast_to(gk, out);
  return out;
}

int64_t count_of(const Shape& shape, const std::vector<int>& axes) {
  int64_t n = 1;
  for (int a : axes) n *= shape[a];
  return n;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  Reduced r = reduce_forward("sum", ReduceOp::Sum, x, axes, keepdims);
  if (is_floating(x.dtype()) && autograd::needs_grad({x})) {
    Shape xs = x.shape();
    std::vector<int> ax = r.axes;
    autograd::record("sum", r.out, {x}, [xs, ax](const Tensor& g) {
      return std::vector<Tensor>{expand_grad(g, xs, ax)};
    });
  }
  return r.out;
}

Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  Reduced r = reduce_forward("mean", ReduceOp::Mean, x, axes, keepdims);
  if (is_floating(x.dtype()) && autograd::needs_grad({x})) {
    Shape xs = x.shape();
    std::vector<int> ax = r.axes;
    autograd::record("mean", r.out, {x}, [xs, ax](const Tensor& g) {
      double inv = 1.0 / static_cast<double>(count_of(xs, ax));
      return std::vector<Tensor>{multiply(expand_grad(g, xs, ax), scalar(inv, g.dtype(), g.device()))};
    });
  }
  return r.out;
}

namespace {

// Max and min share a backward: the gradient is split evenly among the elements equal to the result.
Tensor extremum(const char* name, ReduceOp op, const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  Reduced r = reduce_forward(name, op, x, axes, keepdims);
  if (is_floating(x.dtype()) && autograd::needs_grad({x})) {
    Tensor xd = x.detach(), od = r.out.detach();
    std::vector<int> ax = r.axes;
    autograd::record(name, r.out, {x}, [xd, od, ax](const Tensor& g) {
      Shape xs = xd.shape();
      Tensor mask = cast(equal(xd, expand_grad(od, xs, ax)), xd.dtype());
      Tensor count = expand_grad(sum(mask, ax, true), xs, ax);
      return std::vector<Tensor>{divide(multiply(expand_grad(g, xs, ax), mask), count)};
    });
  }
  return r.out;
}

}  // namespace

Tensor max(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  return extremum("max", ReduceOp::Max, x, axes, keepdims);
}

Tensor min(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  return extremum("min", ReduceOp::Min, x, axes, keepdims);
}

Tensor prod(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  Reduced r = reduce_forward("prod", ReduceOp::Prod, x, axes, keepdims);
  if (is_floating(x.dtype()) && autograd::needs_grad({x})) {
    Tensor xd = x.detach();
    std::vector<int> ax = r.axes;
    autograd::record("prod", r.out, {x}, [xd, ax](const Tensor& g) {
      // d prod / d x_i = product of the others. Dividing the full product by x_i fails at zeros,
      // so use the product of the non-zero entries and the number of zeros in each group:
      // no zeros -> p_nz / x_i; exactly one zero -> p_nz at the zero, 0 elsewhere; more -> 0.
      Shape xs = xd.shape();
      DType dt = xd.dtype();
      Tensor zero = scalar(0.0, dt, xd.device()), one = scalar(1.0, dt, xd.device());
      Tensor is_zero = equal(xd, zero);
      Tensor x_nz = where(is_zero, one, xd);
      Tensor p_nz = expand_grad(prod(x_nz, ax, true), xs, ax);
      Tensor zc = expand_grad(sum(cast(is_zero, dt), ax, true), xs, ax);
      Tensor at_nonzero = multiply(divide(p_nz, x_nz), cast(equal(zc, zero), dt));
      Tensor at_zero = multiply(p_nz, cast(equal(zc, one), dt));
      return std::vector<Tensor>{multiply(expand_grad(g, xs, ax), where(is_zero, at_zero, at_nonzero))};
    });
  }
  return r.out;
}

Tensor logsumexp(const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  Tensor xf = is_floating(x.dtype()) ? x : cast(x, DType::Float32);
  Reduced r = reduce_forward("logsumexp", ReduceOp::LogSumExp, xf, axes, keepdims);
  if (autograd::needs_grad({xf})) {
    Tensor xd = xf.detach(), od = r.out.detach();
    std::vector<int> ax = r.axes;
    autograd::record("logsumexp", r.out, {xf}, [xd, od, ax](const Tensor& g) {
      Shape xs = xd.shape();
      Tensor w = exp(subtract(xd, expand_grad(od, xs, ax)));
      return std::vector<Tensor>{multiply(expand_grad(g, xs, ax), w)};
    });
  }
  return r.out;
}

namespace {

Tensor arg_extremum(const char* name, ArgReduceOp op, const Tensor& x, int axis, bool keepdims) {
  int ax = normalize_axis(axis, x.rank(), name);
  if (x.size(ax) == 0)
    throw ValueError(std::string(name) + ": cannot take the " + (op == ArgReduceOp::ArgMax ? "argmax" : "argmin") +
                     " of an empty axis " + std::to_string(axis) + " of a tensor of shape " + x.shape().str());
  Tensor out = Tensor::empty(reduced_shape(x.shape(), {ax}, keepdims), DType::Int32, x.device());
  backend_of(x).arg_reduce(op, x, ax, out);
  return out;
}

}  // namespace

Tensor argmax(const Tensor& x, int axis, bool keepdims) {
  return arg_extremum("argmax", ArgReduceOp::ArgMax, x, axis, keepdims);
}

Tensor argmin(const Tensor& x, int axis, bool keepdims) {
  return arg_extremum("argmin", ArgReduceOp::ArgMin, x, axis, keepdims);
}

}  // namespace rk::ops
