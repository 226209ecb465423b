// Keras 3 metric functions as per-sample values (rank 1, [N]); the Trainer averages them over
// batches with optional sample weights, as Keras's MeanMetricWrapper does. No gradients.
#include <string>

#include "autograd/autograd.h"
#include "nn/losses_util.h"
#include "nn/trainer.h"
#include "ops/ops.h"

namespace rk::nn {

namespace {

// Mean over every axis after the first (Keras's reduce_to_samplewise_values); a scalar becomes [1].
Tensor samplewise(const Tensor& v) {
  if (v.rank() == 0) return ops::reshape(v, {1});
  if (v.rank() == 1) return v;
  std::vector<int> axes;
  for (int i = 1; i < v.rank(); ++i) axes.push_back(i);
  return ops::mean(v, axes);
}

[[noreturn]] void shape_fail(const std::string& what, const Tensor& y_true, const Tensor& y_pred) {
  throw ShapeError(what + ": y_true has shape " + y_true.shape().str() + " but y_pred has shape " +
                   y_pred.shape().str());
}

}  // namespace

Tensor metric_per_sample(const MetricSpec& spec, const Tensor& y_true_in, const Tensor& y_pred_in) {
  autograd::NoGradGuard ng;
  const std::string kind = detail::canonical_kind(spec.kind);
  if (!y_true_in.defined() || !y_pred_in.defined()) throw ValueError(kind + ": y_true and y_pred must be defined");
  if (!is_floating(y_pred_in.dtype())) throw_dtype_error(kind.c_str(), y_pred_in.dtype(), "a float32 or float64 y_pred");
  Tensor t = y_true_in.detach(), p = y_pred_in.detach();
  const DType dt = p.dtype();
  auto sc = [&](double v) { return ops::scalar(v, dt, p.device()); };

  if (kind == "binary_accuracy") {
    t = ops::cast(t, dt);
    detail::squeeze_or_expand_to_same_rank(t, p);
    if (t.shape() != p.shape()) shape_fail(kind, t, p);
    Tensor pred = ops::cast(ops::greater(p, sc(spec.attrs.num("threshold", 0.5))), dt);
    return samplewise(ops::cast(ops::equal(t, pred), dt));
  }
  if (kind == "accuracy") {
    // keras.metrics.Accuracy: elementwise equality.
    t = ops::cast(t, dt);
    detail::squeeze_or_expand_to_same_rank(t, p);
    if (t.shape() != p.shape()) shape_fail(kind, t, p);
    return samplewise(ops::cast(ops::equal(t, p), dt));
  }
  if (kind == "categorical_accuracy") {
    if (t.shape() != p.shape() || p.rank() == 0) shape_fail(kind, t, p);
    return samplewise(ops::cast(ops::equal(ops::argmax(t, -1), ops::argmax(p, -1)), dt));
  }
  if (kind == "sparse_categorical_accuracy") {
    if (t.rank() == p.rank() && t.rank() > 0 && t.size(-1) == 1) t = detail::squeeze_last(t);
    if (p.rank() == 0 || t.rank() + 1 != p.rank()) shape_fail(kind + " (labels are class indices)", y_true_in, p);
    for (int i = 0; i < t.rank(); ++i)
      if (t.size(i) != p.size(i)) shape_fail(kind, y_true_in, p);
    // Compared as floats, as Keras casts the argmax to y_true's (float) dtype.
    Tensor pred = ops::cast(ops::argmax(p, -1), DType::Float64);
    return samplewise(ops::cast(ops::equal(ops::cast(t, DType::Float64), pred), dt));
  }
  if (kind == "mean_absolute_error" || kind == "mean_squared_error" || kind == "binary_crossentropy" ||
      kind == "categorical_crossentropy" || kind == "sparse_categorical_crossentropy" || kind == "huber") {
    LossSpec ls{kind, spec.attrs, 1.0};
    return samplewise(loss_per_sample(ls, t, p));
  }
  throw ValueError("Unknown metric: '" + spec.kind +
                   "'; expected one of 'accuracy', 'binary_accuracy', 'categorical_accuracy', "
                   "'sparse_categorical_accuracy', 'mean_absolute_error', 'mean_squared_error', "
                   "'binary_crossentropy', 'categorical_crossentropy', 'sparse_categorical_crossentropy'");
}

}  // namespace rk::nn
