// Keras 3 losses: per-sample values (the loss function's output, reduced over the last axis)
// and the "sum_over_batch_size" reduction with sample weights, composed from differentiable ops
// (the cross-entropies use the fused kernels in ops), so autograd gives the backward.
#include <cmath>
#include <string>

#include "nn/losses_util.h"
#include "nn/trainer.h"
#include "ops/ops.h"

namespace rk::nn {

namespace detail {

Tensor squeeze_last(const Tensor& x) {
  std::vector<int64_t> d = x.shape().dims();
  d.pop_back();
  return ops::reshape(x, d);
}

Tensor expand_last(const Tensor& x) {
  std::vector<int64_t> d = x.shape().dims();
  d.push_back(1);
  return ops::reshape(x, d);
}

void squeeze_or_expand_to_same_rank(Tensor& x1, Tensor& x2) {
  // Keras's losses.loss.squeeze_or_expand_to_same_rank with expand_rank_1 = True.
  const int r1 = x1.rank(), r2 = x2.rank();
  if (r1 == r2) return;
  if (r1 == r2 + 1 && x1.size(-1) == 1) {
    if (r2 == 1) x2 = expand_last(x2);
    else x1 = squeeze_last(x1);
  } else if (r2 == r1 + 1 && x2.size(-1) == 1) {
    if (r1 == 1) x1 = expand_last(x1);
    else x2 = squeeze_last(x2);
  }
}

std::string canonical_kind(const std::string& k) {
  if (k == "mse" || k == "MeanSquaredError" || k == "mean_squared_error") return "mean_squared_error";
  if (k == "mae" || k == "MeanAbsoluteError" || k == "mean_absolute_error") return "mean_absolute_error";
  if (k == "huber" || k == "Huber" || k == "huber_loss") return "huber";
  if (k == "BinaryCrossentropy" || k == "binary_crossentropy") return "binary_crossentropy";
  if (k == "CategoricalCrossentropy" || k == "categorical_crossentropy") return "categorical_crossentropy";
  if (k == "SparseCategoricalCrossentropy" || k == "sparse_categorical_crossentropy")
    return "sparse_categorical_crossentropy";
  return k;
}

}  // namespace detail

namespace {

using detail::squeeze_or_expand_to_same_rank;

[[noreturn]] void shape_fail(const std::string& what, const Tensor& y_true, const Tensor& y_pred) {
  throw ShapeError(what + ": y_true has shape " + y_true.shape().str() + " but y_pred has shape " +
                   y_pred.shape().str() + "; they must match");
}

void check_pred(const std::string& what, const Tensor& y_pred) {
  if (!y_pred.defined()) throw ValueError(what + ": y_pred is undefined");
  if (!is_floating(y_pred.dtype())) throw_dtype_error(what.c_str(), y_pred.dtype(), "a float32 or float64 y_pred");
}

// y_true as a constant of y_pred's dtype, aligned in rank as Keras's LossFunctionWrapper does.
void align(const std::string& what, Tensor& t, Tensor& p) {
  t = ops::cast(t.detach(), p.dtype());
  squeeze_or_expand_to_same_rank(t, p);
  if (t.shape() != p.shape()) shape_fail(what, t, p);
}

Tensor mean_last(const Tensor& x) { return x.rank() == 0 ? x : ops::mean(x, {-1}); }

}  // namespace

Tensor loss_per_sample(const LossSpec& spec, const Tensor& y_true_in, const Tensor& y_pred_in) {
  const std::string kind = detail::canonical_kind(spec.kind);
  check_pred(kind, y_pred_in);
  if (!y_true_in.defined()) throw ValueError(kind + ": y_true is undefined");
  Tensor t = y_true_in, p = y_pred_in;
  const Attrs& a = spec.attrs;
  const DType dt = p.dtype();
  auto sc = [&](double v) { return ops::scalar(v, dt, p.device()); };

  if (kind == "mean_squared_error") {
    align(kind, t, p);
    return mean_last(ops::square(ops::subtract(p, t)));
  }
  if (kind == "mean_absolute_error") {
    align(kind, t, p);
    return mean_last(ops::abs(ops::subtract(p, t)));
  }
  if (kind == "huber") {
    align(kind, t, p);
    const double delta = a.num("delta", 1.0);
    Tensor err = ops::subtract(p, t);
    Tensor abs_err = ops::abs(err);
    Tensor quad = ops::multiply(sc(0.5), ops::square(err));
    Tensor lin = ops::subtract(ops::multiply(sc(delta), abs_err), sc(0.5 * delta * delta));
    return mean_last(ops::where(ops::less_equal(abs_err, sc(delta)), quad, lin));
  }
  if (kind == "binary_crossentropy") {
    align(kind, t, p);
    const double ls = a.num("label_smoothing", 0.0);
    if (ls != 0) t = ops::add(ops::multiply(t, sc(1.0 - ls)), sc(0.5 * ls));
    return mean_last(ops::binary_crossentropy(t, p, a.flag("from_logits", false)));
  }
  if (kind == "categorical_crossentropy") {
    align(kind, t, p);
    if (p.rank() == 0) shape_fail(kind + " needs a class axis", t, p);
    const double ls = a.num("label_smoothing", 0.0);
    if (ls != 0) {
      const double c = static_cast<double>(p.size(-1));
      t = ops::add(ops::multiply(t, sc(1.0 - ls)), sc(ls / c));
    }
    return ops::categorical_crossentropy(t, p, a.flag("from_logits", false));
  }
  if (kind == "sparse_categorical_crossentropy") {
    // Labels [N] or [N, 1] (int32 or integral floats) for y_pred [N, C].
    t = t.detach();
    if (t.rank() == p.rank() && t.rank() > 0 && t.size(-1) == 1) t = detail::squeeze_last(t);
    if (p.rank() == 0 || t.rank() + 1 != p.rank()) {
      std::vector<int64_t> want = p.shape().dims();
      if (!want.empty()) want.pop_back();
      throw ShapeError(kind + ": y_true must hold class indices of shape " + Shape(want).str() + " (or with a trailing 1) " +
                       "for y_pred of shape " + p.shape().str() + ", got shape " + y_true_in.shape().str());
    }
    for (int i = 0; i < t.rank(); ++i)
      if (t.size(i) != p.size(i))
        throw ShapeError(kind + ": y_true shape " + y_true_in.shape().str() + " does not match y_pred shape " +
                         p.shape().str());
    return ops::sparse_categorical_crossentropy(t, p, a.flag("from_logits", false));
  }
  throw ValueError("Unknown loss: '" + spec.kind +
                   "'; expected one of 'mean_squared_error', 'mean_absolute_error', 'huber', "
                   "'binary_crossentropy', 'categorical_crossentropy', 'sparse_categorical_crossentropy'");
}

Tensor reduce_loss(const Tensor& per_sample, const Tensor& sample_weight) {
  Tensor v = per_sample;
  if (v.numel() == 0) return ops::scalar(0.0, v.dtype(), v.device());
  if (v.rank() == 0 && !sample_weight.defined()) return v;
  if (sample_weight.defined()) {
    Tensor sw = ops::cast(sample_weight.detach(), v.dtype());
    squeeze_or_expand_to_same_rank(v, sw);
    // Keras: values * sample_weight (broadcast), then sum / number of values.
    Shape out = broadcast_shapes(v.shape(), sw.shape(), "reduce_loss (sample_weight)");
    (void)out;
    v = ops::multiply(v, sw);
  }
  return ops::mean(v);
}

}  // namespace rk::nn
