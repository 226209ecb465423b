// Cross-entropy losses with Keras 3 semantics: per-sample (categorical, sparse) or
// per-element (binary) values, no reduction. The from_logits forms use fused, numerically
// stable kernels; the probability forms compose differentiable ops (Keras's clipping
// included), so autograd derives their gradients. Gradients flow to `output` only.
#include <cmath>
#include <sstream>
#include <string>

#include "ops/ops.h"

namespace rk::ops {

namespace {

[[noreturn]] void shape_mismatch(const char* op, const Tensor& target, const Tensor& output) {
  throw ShapeError(std::string(op) + ": target shape " + target.shape().str() + " does not match output shape " +
                   output.shape().str());
}

void check_output(const char* op, const Tensor& output) {
  if (!is_floating(output.dtype())) throw_dtype_error(op, output.dtype(), "float32 or float64");
  if (output.rank() == 0)
    throw ShapeError(std::string(op) + ": output must have a class axis, got a scalar of shape " +
                     output.shape().str());
}

// Shape of `s` without its last axis.
Shape drop_last(const Shape& s) {
  std::vector<int64_t> d = s.dims();
  d.pop_back();
  return Shape(std::move(d));
}

// The target as a constant of output's dtype (no gradient flows to targets).
Tensor as_constant(const Tensor& target, DType dt) { return cast(target.detach(), dt); }

std::string label_str(double v) {
  std::ostringstream os;
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) os << static_cast<long long>(v);
  else os << v;
  return os.str();
}

// Validates class indices (int32 or integral floats) against `classes` and returns them as int32.
Tensor labels_int32(const char* op, const Tensor& target, int64_t classes) {
  Tensor t = target.detach();
  if (t.numel() == 0) return cast(t, DType::Int32);
  if (t.dtype() == DType::Bool) t = cast(t, DType::Int32);
  // Range first, via min/max: that also keeps NaN and huge values away from the int32 conversion.
  double lo = min(t).item(), hi = max(t).item();
  if (std::isnan(lo) || std::isnan(hi))
    throw ValueError(std::string(op) + ": labels must be integer class indices, got NaN");
  if (lo < 0)
    throw IndexError(std::string(op) + ": label " + label_str(lo) + " is out of range for " +
                     std::to_string(classes) + " classes");
  if (hi >= static_cast<double>(classes))
    throw IndexError(std::string(op) + ": label " + label_str(hi) + " is out of range for " +
                     std::to_string(classes) + " classes");
  if (t.dtype() == DType::Int32) return t;
  Tensor ti = cast(t, DType::Int32);
  Tensor bad = not_equal(cast(ti, t.dtype()), t);
  if (max(bad).item() != 0)
    throw ValueError(std::string(op) + ": labels must be integer class indices, got non-integral values in a " +
                     dtype_name(t.dtype()) + " target");
  return ti;
}

}  // namespace

Tensor categorical_crossentropy(const Tensor& target, const Tensor& output, bool from_logits, double epsilon) {
  const char* op = "categorical_crossentropy";
  check_output(op, output);
  if (target.shape() != output.shape()) shape_mismatch(op, target, output);
  DType dt = output.dtype();
  Tensor t = as_constant(target, dt);
  if (!from_logits) {
    // Keras: rescale to sum 1, clip to [eps, 1 - eps], then -sum(target * log(p)).
    Tensor p = divide(output, sum(output, {-1}, true));
    p = clip(p, epsilon, 1.0 - epsilon);
    return negative(sum(multiply(t, log(p)), {-1}));
  }
  Shape ls = drop_last(output.shape());
  Tensor loss = Tensor::empty(ls, dt, output.device());
  Tensor probs = Tensor::empty(output.shape(), dt, output.device());
  backend_of(output).softmax_cross_entropy(output, t, loss, probs);
  if (autograd::needs_grad({output})) {
    Shape gs = output.shape();
    std::vector<int64_t> gd = gs.dims();
    gd.back() = 1;
    Shape col(gd);
    autograd::record(op, loss, {output}, [probs, t, col](const Tensor& g) {
      return std::vector<Tensor>{multiply(g.view_as_shape(col), subtract(probs, t))};
    });
  }
  return loss;
}

Tensor sparse_categorical_crossentropy(const Tensor& target, const Tensor& output, bool from_logits,
                                       double epsilon) {
  const char* op = "sparse_categorical_crossentropy";
  check_output(op, output);
  Shape ls = drop_last(output.shape());
  Tensor tgt = target;
  // Keras also accepts targets with a trailing size-1 axis, e.g. (32, 1) for output (32, 10).
  if (tgt.shape() != ls && tgt.rank() == output.rank() && tgt.size(-1) == 1) tgt = tgt.view_as_shape(ls);
  if (tgt.shape() != ls)
    throw ShapeError(std::string(op) + ": target shape " + target.shape().str() +
                     " does not match output shape " + output.shape().str() + " (expected target shape " +
                     ls.str() + ")");
  int64_t classes = output.size(-1);
  Tensor labels = labels_int32(op, tgt, classes);
  DType dt = output.dtype();
  if (!from_logits) {
    Tensor p = divide(output, sum(output, {-1}, true));
    p = clip(p, epsilon, 1.0 - epsilon);
    return negative(sum(multiply(one_hot(labels, classes, dt), log(p)), {-1}));
  }
  Tensor loss = Tensor::empty(ls, dt, output.device());
  Tensor probs = Tensor::empty(output.shape(), dt, output.device());
  backend_of(output).sparse_softmax_cross_entropy(output, labels, loss, probs);
  if (autograd::needs_grad({output})) {
    autograd::record(op, loss, {output}, [probs, labels](const Tensor& g) {
      Tensor gx = Tensor::empty(probs.shape(), probs.dtype(), probs.device());
      backend_of(probs).sparse_softmax_cross_entropy_backward(probs, labels, g, gx);
      return std::vector<Tensor>{gx};
    });
  }
  return loss;
}

Tensor binary_crossentropy(const Tensor& target, const Tensor& output, bool from_logits, double epsilon) {
  const char* op = "binary_crossentropy";
  if (!is_floating(output.dtype())) throw_dtype_error(op, output.dtype(), "float32 or float64");
  if (target.shape() != output.shape()) shape_mismatch(op, target, output);
  DType dt = output.dtype();
  Tensor t = as_constant(target, dt);
  if (!from_logits) {
    // Keras: clip to [eps, 1 - eps], then -(t log p + (1 - t) log(1 - p)).
    Tensor p = clip(output, epsilon, 1.0 - epsilon);
    Tensor one = scalar(1.0, dt, output.device());
    return negative(add(multiply(t, log(p)), multiply(subtract(one, t), log(subtract(one, p)))));
  }
  Tensor out = Tensor::empty(output.shape(), dt, output.device());
  backend_of(output).sigmoid_binary_cross_entropy(output, t, out);
  if (autograd::needs_grad({output})) {
    Tensor xd = output.detach();
    autograd::record(op, out, {output}, [xd, t](const Tensor& g) {
      return std::vector<Tensor>{multiply(g, subtract(sigmoid(xd), t))};
    });
  }
  return out;
}

}  // namespace rk::ops
