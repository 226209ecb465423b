// Keras 3 losses: per-sample values (the loss function's output, reduced over the last axis)
// and Keras's reductions with sample weights, composed from differentiable ops (the
// cross-entropies use the fused kernels in ops), so autograd gives the backward. A loss whose
// function is supplied from outside (an R function, through the glue) runs the same way.
#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "autograd/autograd.h"
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
  static const std::map<std::string, std::string> aliases = {
      {"mse", "mean_squared_error"}, {"MSE", "mean_squared_error"}, {"MeanSquaredError", "mean_squared_error"},
      {"mae", "mean_absolute_error"}, {"MAE", "mean_absolute_error"}, {"MeanAbsoluteError", "mean_absolute_error"},
      {"mape", "mean_absolute_percentage_error"}, {"MAPE", "mean_absolute_percentage_error"},
      {"MeanAbsolutePercentageError", "mean_absolute_percentage_error"},
      {"msle", "mean_squared_logarithmic_error"}, {"MSLE", "mean_squared_logarithmic_error"},
      {"MeanSquaredLogarithmicError", "mean_squared_logarithmic_error"},
      {"Huber", "huber"}, {"huber_loss", "huber"},
      {"logcosh", "log_cosh"}, {"LogCosh", "log_cosh"},
      {"Hinge", "hinge"}, {"SquaredHinge", "squared_hinge"}, {"CategoricalHinge", "categorical_hinge"},
      {"kld", "kl_divergence"}, {"KLD", "kl_divergence"}, {"KLDivergence", "kl_divergence"},
      {"kullback_leibler_divergence", "kl_divergence"},
      {"Poisson", "poisson"}, {"CosineSimilarity", "cosine_similarity"},
      {"BinaryCrossentropy", "binary_crossentropy"}, {"CategoricalCrossentropy", "categorical_crossentropy"},
      {"SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"},
      {"BinaryFocalCrossentropy", "binary_focal_crossentropy"},
      {"CategoricalFocalCrossentropy", "categorical_focal_crossentropy"},
      {"CategoricalGeneralizedCrossEntropy", "categorical_generalized_cross_entropy"},
      {"Dice", "dice"}, {"Tversky", "tversky"}, {"Circle", "circle"}, {"CTC", "ctc"}};
  auto it = aliases.find(k);
  return it == aliases.end() ? k : it->second;
}

}  // namespace detail

namespace {

using detail::squeeze_or_expand_to_same_rank;

constexpr double kEps = 1e-7;  // Keras's backend.epsilon()

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

void need_class_axis(const std::string& what, const Tensor& t, const Tensor& p) {
  if (p.rank() == 0) shape_fail(what + " needs a class axis", t, p);
}

Tensor mean_last(const Tensor& x) { return x.rank() == 0 ? x : ops::mean(x, {-1}); }

// Keras's hinge losses turn {0, 1} labels into {-1, 1} and leave other labels alone.
Tensor hinge_labels(const Tensor& t) {
  autograd::NoGradGuard ng;
  const DType dt = t.dtype();
  Tensor zero = ops::scalar(0.0, dt, t.device()), one = ops::scalar(1.0, dt, t.device());
  Tensor is_binary = ops::logical_or(ops::equal(t, zero), ops::equal(t, one));
  if (t.numel() > 0 && ops::min(ops::cast(is_binary, dt)).item() == 0) return t;
  return ops::subtract(ops::multiply(ops::scalar(2.0, dt, t.device()), t), one);
}

// Sparse class ids (y_pred has one more axis, or y_true a trailing 1) as a one-hot of y_pred's dtype.
Tensor sparse_one_hot(const std::string& kind, const Tensor& y_true, const Tensor& p) {
  Tensor t = y_true.detach();
  if (t.rank() == p.rank() && t.rank() > 0 && t.size(-1) == 1) t = detail::squeeze_last(t);
  bool ok = p.rank() > 0 && t.rank() + 1 == p.rank();
  for (int i = 0; ok && i < t.rank(); ++i) ok = t.size(i) == p.size(i);
  if (!ok) {
    std::vector<int64_t> want = p.shape().dims();
    if (!want.empty()) want.pop_back();
    throw ShapeError(kind + ": y_true must hold class indices of shape " + Shape(want).str() +
                     " (or with a trailing 1) for y_pred of shape " + p.shape().str() + ", got shape " +
                     y_true.shape().str());
  }
  const int64_t c = p.size(-1);
  if (t.numel() > 0) {
    autograd::NoGradGuard ng;
    Tensor tf = ops::cast(t, DType::Float64);
    const double lo = ops::min(tf).item(), hi = ops::max(tf).item();
    if (!(lo >= 0) || !(hi < static_cast<double>(c)))
      throw IndexError(kind + ": labels must be class indices in [0, " + std::to_string(c - 1) + "], got values in [" +
                       std::to_string(lo) + ", " + std::to_string(hi) + "]");
    if (ops::max(ops::abs(ops::subtract(tf, ops::cast(ops::cast(tf, DType::Int32), DType::Float64)))).item() != 0)
      throw ValueError(kind + ": labels must be whole-number class indices");
  }
  return ops::one_hot(ops::cast(t, DType::Int32), c, p.dtype());
}

// x / ||x|| over the last axis (Keras's normalize / TF's l2_normalize).
Tensor l2_normalize_last(const Tensor& x) {
  const DType dt = x.dtype();
  Tensor ss = ops::sum(ops::square(x), {-1}, true);
  return ops::divide(x, ops::sqrt(ops::maximum(ss, ops::scalar(1e-12, dt, x.device()))));
}

// Axes of the whole-tensor losses (dice, tversky): attr "axis" holds 0-based axes; none = all.
std::vector<int> loss_axes(const Attrs& a) {
  std::vector<int> out;
  if (a.has("axis"))
    for (int64_t v : a.ints("axis")) out.push_back(static_cast<int>(v));
  return out;
}

// Integer labels [N] (or [N, 1]) as float64 [N] constants, for equality masks.
Tensor circle_labels(const Tensor& labels, const char* what) {
  Tensor l = ops::cast(labels.detach(), DType::Float64);
  if (l.rank() == 2 && l.size(1) == 1) l = detail::squeeze_last(l);
  if (l.rank() != 1)
    throw ShapeError(std::string("circle: ") + what + " must be integer labels of shape (batch_size), got shape " +
                     labels.shape().str());
  return ops::cast(ops::cast(l, DType::Int32), DType::Float64);  // Keras casts labels to int32
}

// Keras 3's circle loss (Sun et al., 2020) of L2-normalised embeddings y_pred [N, D] with integer labels
// y_true [N] against reference embeddings/labels (attrs "ref_embeddings" row-major with
// "ref_embeddings_dims", "ref_labels"; default: the batch itself). Per-sample values [N]; a sample with
// no positive (or no negative) pair gets 0, which the reduction masks out (loss_output_mask).
Tensor circle_loss(const Tensor& y_true, const Tensor& p, const Attrs& a) {
  const DType dt = p.dtype();
  auto sc = [&](double v) { return ops::scalar(v, dt, p.device()); };
  if (p.rank() != 2) throw ShapeError("circle: y_pred must be embeddings of shape (batch_size, dim), got shape " +
                                      p.shape().str());
  Tensor q = circle_labels(y_true, "y_true");
  if (q.size(0) != p.size(0))
    throw ShapeError("circle: y_true has " + std::to_string(q.size(0)) + " labels but y_pred has " +
                     std::to_string(p.size(0)) + " embeddings");
  Tensor ref = p;
  if (a.has("ref_embeddings")) {
    const std::vector<int64_t> d = a.ints("ref_embeddings_dims");
    const std::vector<double> v = a.nums("ref_embeddings");
    if (Shape(d).numel() != static_cast<int64_t>(v.size()))
      throw ValueError("circle: ref_embeddings holds " + std::to_string(v.size()) + " values but its dims say " +
                       Shape(d).str());
    Tensor host = Tensor::empty(Shape(d), DType::Float64);
    std::copy(v.begin(), v.end(), host.data<double>());
    ref = ops::cast(ops::to_device(host, p.device()), dt);
    if (ref.rank() != 2 || ref.size(1) != p.size(1))
      throw ShapeError("circle: ref_embeddings must have shape (n, " + std::to_string(p.size(1)) + "), got shape " +
                       ref.shape().str());
  }
  Tensor k = q;
  if (a.has("ref_labels")) {
    const std::vector<double> v = a.nums("ref_labels");
    Tensor host = Tensor::empty(Shape({static_cast<int64_t>(v.size())}), DType::Float64);
    std::copy(v.begin(), v.end(), host.data<double>());
    k = circle_labels(ops::to_device(host, p.device()), "ref_labels");
  }
  if (k.size(0) != ref.size(0))
    throw ShapeError("circle: " + std::to_string(k.size(0)) + " reference labels for " + std::to_string(ref.size(0)) +
                     " reference embeddings");
  const double gamma = a.num("gamma", 80.0), margin = a.num("margin", 0.4);
  const int64_t n = q.size(0), m = k.size(0);
  Tensor pos, neg;
  {
    autograd::NoGradGuard ng;
    Tensor same = ops::equal(ops::reshape(q, {n, 1}), ops::reshape(k, {1, m}));
    neg = ops::logical_not(same);
    pos = same;
    if (a.flag("remove_diagonal", true)) {
      // Keras removes the (i, i) entries of the [n, m] matrix, whatever the reference set is.
      Tensor off = Tensor::empty(Shape({n, m}), DType::Bool);
      uint8_t* po = off.data<uint8_t>();
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) po[i * m + j] = i != j;
      pos = ops::logical_and(pos, ops::to_device(off, pos.device()));
    }
  }
  Tensor dist = ops::maximum(ops::subtract(sc(1.0), ops::matmul(p, ops::transpose(ref))), sc(0.0));
  Tensor pos_w = ops::maximum(ops::multiply(ops::add(sc(margin), dist), ops::cast(pos, dt)), sc(0.0));
  Tensor neg_w = ops::maximum(ops::multiply(ops::subtract(sc(1.0 + margin), dist), ops::cast(neg, dt)), sc(0.0));
  Tensor pos_wd = ops::multiply(sc(-gamma), ops::multiply(pos_w, ops::subtract(sc(margin), dist)));
  Tensor neg_wd = ops::multiply(sc(gamma), ops::multiply(neg_w, ops::subtract(sc(1.0 - margin), dist)));
  // Keras puts -inf outside the masks; a huge finite value gives the same values (an empty row's
  // softplus underflows to 0) without the NaN gradient logsumexp has on an all -inf row.
  Tensor off_mask = sc(-1e30);
  Tensor p_loss = ops::logsumexp(ops::where(pos, pos_wd, off_mask), {1});
  Tensor n_loss = ops::logsumexp(ops::where(neg, neg_wd, off_mask), {1});
  return ops::softplus(ops::add(p_loss, n_loss));
}

}  // namespace

Tensor loss_per_sample(const LossSpec& spec, const Tensor& y_true_in, const Tensor& y_pred_in) {
  const std::string kind = detail::canonical_kind(spec.kind);
  check_pred(kind, y_pred_in);
  if (!y_true_in.defined()) throw ValueError(kind + ": y_true is undefined");
  if (spec.fn) {
    Tensor v = spec.fn(y_true_in, y_pred_in);
    if (!v.defined() || !is_floating(v.dtype()))
      throw TypeError("loss \"" + spec.kind + "\": the loss function must return a floating tensor of loss values");
    return v;
  }
  Tensor t = y_true_in, p = y_pred_in;
  const Attrs& a = spec.attrs;
  const DType dt = p.dtype();
  auto sc = [&](double v) { return ops::scalar(v, dt, p.device()); };

  // ---- element-wise losses: the mean over the last axis
  if (kind == "mean_squared_error" || kind == "mean_absolute_error" || kind == "mean_absolute_percentage_error" ||
      kind == "mean_squared_logarithmic_error" || kind == "huber" || kind == "log_cosh" || kind == "hinge" ||
      kind == "squared_hinge" || kind == "poisson" || kind == "binary_crossentropy" ||
      kind == "binary_focal_crossentropy") {
    align(kind, t, p);
    Tensor v;
    if (kind == "mean_squared_error") {
      v = ops::square(ops::subtract(p, t));
    } else if (kind == "mean_absolute_error") {
      v = ops::abs(ops::subtract(p, t));
    } else if (kind == "mean_absolute_percentage_error") {
      v = ops::multiply(sc(100.0), ops::abs(ops::divide(ops::subtract(t, p), ops::maximum(ops::abs(t), sc(kEps)))));
    } else if (kind == "mean_squared_logarithmic_error") {
      Tensor lp = ops::log(ops::add(ops::maximum(p, sc(kEps)), sc(1.0)));
      Tensor lt = ops::log(ops::add(ops::maximum(t, sc(kEps)), sc(1.0)));
      v = ops::square(ops::subtract(lp, lt));
    } else if (kind == "huber") {
      const double delta = a.num("delta", 1.0);
      Tensor err = ops::subtract(p, t);
      Tensor abs_err = ops::abs(err);
      Tensor quad = ops::multiply(sc(0.5), ops::square(err));
      Tensor lin = ops::subtract(ops::multiply(sc(delta), abs_err), sc(0.5 * delta * delta));
      v = ops::where(ops::less_equal(abs_err, sc(delta)), quad, lin);
    } else if (kind == "log_cosh") {
      // log(cosh(d)) = d + softplus(-2d) - log(2), stable for large |d|.
      Tensor d = ops::subtract(p, t);
      v = ops::subtract(ops::add(d, ops::softplus(ops::multiply(sc(-2.0), d))), sc(std::log(2.0)));
    } else if (kind == "hinge" || kind == "squared_hinge") {
      Tensor h = ops::relu(ops::subtract(sc(1.0), ops::multiply(hinge_labels(t), p)));
      v = kind == "hinge" ? h : ops::square(h);
    } else if (kind == "poisson") {
      v = ops::subtract(p, ops::multiply(t, ops::log(ops::add(p, sc(kEps)))));
    } else {
      const double ls = a.num("label_smoothing", 0.0);
      if (ls != 0) t = ops::add(ops::multiply(t, sc(1.0 - ls)), sc(0.5 * ls));
      const bool logits = a.flag("from_logits", false);
      if (kind == "binary_crossentropy") {
        v = ops::binary_crossentropy(t, p, logits);
      } else {
        // Keras: probabilities first, then bce * (1 - p_t)^gamma, optionally class-balanced by alpha.
        Tensor prob = logits ? ops::sigmoid(p) : p;
        Tensor bce = ops::binary_crossentropy(t, prob, false);
        Tensor one_m_t = ops::subtract(sc(1.0), t);
        Tensor p_t = ops::add(ops::multiply(t, prob), ops::multiply(one_m_t, ops::subtract(sc(1.0), prob)));
        v = ops::multiply(ops::power(ops::subtract(sc(1.0), p_t), sc(a.num("gamma", 2.0))), bce);
        if (a.flag("apply_class_balancing", false)) {
          const double alpha = a.num("alpha", 0.25);
          v = ops::multiply(ops::add(ops::multiply(t, sc(alpha)), ops::multiply(one_m_t, sc(1.0 - alpha))), v);
        }
      }
    }
    return mean_last(v);
  }

  // ---- losses over the class axis: one value per sample
  if (kind == "categorical_crossentropy" || kind == "categorical_focal_crossentropy" ||
      kind == "categorical_hinge" || kind == "kl_divergence" || kind == "cosine_similarity") {
    align(kind, t, p);
    need_class_axis(kind, t, p);
    if (kind == "categorical_hinge") {
      Tensor pos = ops::sum(ops::multiply(t, p), {-1});
      Tensor neg = ops::max(ops::multiply(ops::subtract(sc(1.0), t), p), {-1});
      return ops::relu(ops::add(ops::subtract(neg, pos), sc(1.0)));
    }
    if (kind == "kl_divergence") {
      Tensor tc = ops::clip(t, kEps, 1.0), pc = ops::clip(p, kEps, 1.0);
      return ops::sum(ops::multiply(tc, ops::log(ops::divide(tc, pc))), {-1});
    }
    if (kind == "cosine_similarity")
      return ops::negative(ops::sum(ops::multiply(l2_normalize_last(t), l2_normalize_last(p)), {-1}));
    const double ls = a.num("label_smoothing", 0.0);
    if (ls != 0) t = ops::add(ops::multiply(t, sc(1.0 - ls)), sc(ls / static_cast<double>(p.size(-1))));
    const bool logits = a.flag("from_logits", false);
    if (kind == "categorical_crossentropy") return ops::categorical_crossentropy(t, p, logits);
    // Focal: -alpha * (1 - p)^gamma * t * log(p) with p rescaled to sum 1 and clipped, as Keras.
    Tensor prob = logits ? ops::softmax(p, -1) : p;
    prob = ops::clip(ops::divide(prob, ops::sum(prob, {-1}, true)), kEps, 1.0 - kEps);
    Tensor w = ops::multiply(ops::power(ops::subtract(sc(1.0), prob), sc(a.num("gamma", 2.0))), sc(a.num("alpha", 0.25)));
    return ops::sum(ops::multiply(w, ops::negative(ops::multiply(t, ops::log(prob)))), {-1});
  }

  // ---- sparse labels
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
  if (kind == "categorical_generalized_cross_entropy") {
    // (1 - p_y^q) / q with p_y the predicted probability of the true class (integer labels).
    const double q = a.num("q", 0.5);
    Tensor p_y = ops::sum(ops::multiply(p, sparse_one_hot(kind, t, p)), {-1});
    return ops::divide(ops::subtract(sc(1.0), ops::power(p_y, sc(q))), sc(q));
  }

  // ---- overlap losses over `axis` (all axes by default: one value for the batch)
  if (kind == "dice" || kind == "tversky") {
    t = ops::cast(t.detach(), dt);
    if (t.shape() != p.shape()) shape_fail(kind, t, p);
    const std::vector<int> ax = loss_axes(a);
    Tensor tp = ops::sum(ops::multiply(t, p), ax);
    if (kind == "dice") {
      Tensor den = ops::add(ops::add(ops::sum(t, ax), ops::sum(p, ax)), sc(kEps));
      return ops::subtract(sc(1.0), ops::divide(ops::multiply(sc(2.0), tp), den));
    }
    Tensor fn = ops::sum(ops::multiply(t, ops::subtract(sc(1.0), p)), ax);
    Tensor fp = ops::sum(ops::multiply(ops::subtract(sc(1.0), t), p), ax);
    Tensor den = ops::add(ops::add(ops::add(tp, ops::multiply(sc(a.num("alpha", 0.5)), fn)),
                                   ops::multiply(sc(a.num("beta", 0.5)), fp)), sc(kEps));
    return ops::subtract(sc(1.0), ops::divide(tp, den));
  }
  if (kind == "ctc") {
    // Keras: y_true [B, max_length] labels with 0 the blank/padding, y_pred [B, T, C] logits; the label
    // length is the count of non-zero labels and every sample uses all T frames.
    if (t.rank() != 2)
      throw ShapeError("ctc: y_true must have shape (batch_size, max_length) holding integer labels, got shape " +
                       t.shape().str());
    if (p.rank() != 3)
      throw ShapeError("ctc: y_pred must have shape (batch_size, max_length, num_classes) holding logits, got shape " +
                       p.shape().str());
    Tensor tl;
    {
      autograd::NoGradGuard ng;
      Tensor td = ops::cast(t.detach(), DType::Float64);
      tl = ops::cast(ops::sum(ops::cast(ops::not_equal(td, ops::scalar(0.0, DType::Float64, td.device())),
                                        DType::Float64), {-1}), DType::Int32);
    }
    return ops::ctc_loss(t.detach(), p, tl, Tensor(), 0);
  }
  if (kind == "circle") return circle_loss(t, p, a);
  throw ValueError("Unknown loss: '" + spec.kind +
                   "'; expected a Keras loss name such as 'mean_squared_error', 'binary_crossentropy', "
                   "'categorical_crossentropy', 'sparse_categorical_crossentropy', 'huber', 'hinge', 'poisson'");
}

Tensor loss_output_mask(const std::string& kind, const Tensor& per_sample) {
  // Keras's circle() marks its values with a mask `values > 0` (rows without a positive pair).
  if (detail::canonical_kind(kind) != "circle" || !per_sample.defined()) return Tensor();
  autograd::NoGradGuard ng;
  return ops::greater(per_sample.detach(), ops::scalar(0.0, per_sample.dtype(), per_sample.device()));
}

Tensor reduce_loss(const Tensor& per_sample, const Tensor& sample_weight_in, const std::string& reduction,
                   const Tensor& mask) {
  Tensor v = per_sample;
  Tensor sample_weight = sample_weight_in;
  if (mask.defined() && reduction != "none") {
    // Keras's apply_mask: the mask joins the sample weights; for the means, valid entries weigh
    // total / valid so that the mean runs over the valid entries only (0 when none is valid).
    autograd::NoGradGuard ng;
    const DType dt = v.dtype();
    Tensor fm = ops::cast(mask, dt);
    if (reduction == "sum_over_batch_size" || reduction == "mean") {
      const double valid = ops::sum(fm).item();
      fm = ops::multiply(fm, ops::scalar(valid == 0 ? 0.0 : static_cast<double>(fm.numel()) / valid, dt, v.device()));
    }
    if (sample_weight.defined()) {
      Tensor sw = ops::cast(sample_weight.detach(), dt);
      squeeze_or_expand_to_same_rank(fm, sw);
      sample_weight = ops::multiply(sw, fm);
    } else {
      sample_weight = fm;
    }
  }
  if (reduction == "none") {
    if (!sample_weight.defined()) return v;
  } else if (reduction != "sum_over_batch_size" && reduction != "mean" && reduction != "sum" &&
             reduction != "mean_with_sample_weight") {
    throw ValueError("Invalid loss reduction '" + reduction +
                     "'; expected one of 'sum_over_batch_size', 'sum', 'mean', 'mean_with_sample_weight', 'none'");
  }
  if (v.numel() == 0) return ops::scalar(0.0, v.dtype(), v.device());
  Tensor sw;
  if (sample_weight.defined()) {
    sw = ops::cast(sample_weight.detach(), v.dtype());
    squeeze_or_expand_to_same_rank(v, sw);
    // Keras: values * sample_weight (broadcast), then the reduction.
    (void)broadcast_shapes(v.shape(), sw.shape(), "reduce_loss (sample_weight)");
    v = ops::multiply(v, sw);
  }
  if (reduction == "none") return v;
  if (v.rank() == 0) return v;
  if (reduction == "sum") return ops::sum(v);
  if (reduction == "mean_with_sample_weight" && sw.defined()) {
    // Keras: sum / sum(sample_weight), 0 when the weights sum to 0 (divide_no_nan).
    Tensor den = ops::sum(ops::broadcast_to(sw, v.shape()));
    Tensor safe = ops::where(ops::equal(den, ops::scalar(0.0, den.dtype(), den.device())),
                             ops::scalar(1.0, den.dtype(), den.device()), den);
    return ops::where(ops::equal(den, ops::scalar(0.0, den.dtype(), den.device())),
                      ops::scalar(0.0, v.dtype(), v.device()), ops::divide(ops::sum(v), safe));
  }
  return ops::mean(v);
}

}  // namespace rk::nn
