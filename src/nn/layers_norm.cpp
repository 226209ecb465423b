// Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization,
// RMSNormalization and UnitNormalization, with Keras 3 semantics. BatchNormalization runs the fused
// ops::batch_norm_* (cuDNN on CUDA); the others are composed of ops (mean, square, sqrt, reshape, ...),
// so autograd gives their backward. BatchNormalization's moving statistics
// are non-trainable weights; in training it reports their new values in Context::state_updates
// (the caller writes them after the step) instead of changing them during the forward pass.
#include <algorithm>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "core/error.h"
#include "nn/layer.h"
#include "nn/layer_impl.h"
#include "ops/ops.h"

namespace rk::nn {

namespace {

using detail::num_str;
using detail::as_float;
using detail::check_num_inputs;
using detail::check_num_weights;
using detail::scalar_like;

// Keras axis (negative counts from the end) -> 0-based axis of an input of rank `rank`; ShapeError
// naming the layer and the input shape when it is out of range.
int resolve_axis(const Layer& l, int64_t axis, const PartialShape& s) {
  const int64_t r = static_cast<int64_t>(s.size());
  if (axis < -r || axis >= r)
    detail::layer_fail(l, "axis " + std::to_string(axis) + " is out of range for an input of rank " +
                              std::to_string(r) + " (input shape " + shape_str(s) + ")");
  return static_cast<int>(axis < 0 ? axis + r : axis);
}

// The feature axes must be known (the weights are sized by them) and must not be the batch axis.
void check_feature_axis(const Layer& l, int ax, const PartialShape& s) {
  if (ax == 0)
    detail::layer_fail(l, "cannot normalize along the batch axis (axis 0); input shape " + shape_str(s));
  if (s[static_cast<size_t>(ax)] < 0)
    detail::layer_fail(l, "axis " + std::to_string(ax) + " of the input must have a defined size, got input shape " +
                              shape_str(s));
}

// 1 / sqrt(v + eps).
Tensor rsqrt_eps(const Tensor& v, double eps) { return ops::reciprocal(ops::sqrt(ops::add(v, scalar_like(v, eps)))); }

// The shape that broadcasts per-position weights over the normalized axes `ax` of an input of shape
// `s` (1 elsewhere), and how many values those axes hold.
std::pair<std::vector<int64_t>, int64_t> normalized_shape(const PartialShape& s, const std::vector<int>& ax) {
  std::vector<int64_t> bshape(s.size(), 1);
  int64_t n = 1;
  for (int a : ax) {
    bshape[static_cast<size_t>(a)] = s[static_cast<size_t>(a)];
    n *= s[static_cast<size_t>(a)];
  }
  return {bshape, n};
}

// Biased (population) mean and variance over `axes`, kept as size-1 axes (Keras's ops.moments).
std::pair<Tensor, Tensor> moments(const Tensor& x, const std::vector<int>& axes) {
  Tensor mean = ops::mean(x, axes, true);
  Tensor var = ops::mean(ops::square(ops::subtract(x, mean)), axes, true);
  return {mean, var};
}

// y = x * inv + (beta - mean * inv), inv = gamma / sqrt(var + eps): Keras's arrangement.
Tensor normalize(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& gamma, const Tensor& beta,
                 double eps) {
  Tensor inv = rsqrt_eps(var, eps);
  if (gamma.defined()) inv = ops::multiply(inv, gamma);
  Tensor res = ops::negative(ops::multiply(mean, inv));
  if (beta.defined()) res = ops::add(res, beta);
  return ops::add(ops::multiply(x, inv), res);
}

double checked_epsilon(const Attrs& a, double default_eps = 1e-3) {
  double eps = a.num("epsilon", default_eps);
  if (!(eps >= 0.0)) throw ValueError("`epsilon` must be a non-negative number, got epsilon=" + num_str(eps));
  return eps;
}

// The `axis` setting of the per-sample normalizations (Layer, RMS, Unit): -1 when absent, never empty.
std::vector<int64_t> checked_axes(const Attrs& a, const std::string& kind) {
  if (!a.has("axis")) return {-1};
  std::vector<int64_t> axes = a.ints("axis");
  if (axes.empty()) throw ValueError(kind + ": `axis` must name at least one axis");
  return axes;
}

// ----------------------------------------------------------------------- BatchNormalization

class BatchNormalization : public Layer {
 public:
  BatchNormalization(const std::string& name, const Attrs& a)
      : Layer("BatchNormalization", name, a),
        axis_(a.integer("axis", -1)),
        momentum_(a.num("momentum", 0.99)),
        epsilon_(checked_epsilon(a)),
        center_(a.flag("center", true)),
        scale_(a.flag("scale", true)),
        trainable_(a.flag("trainable", true)) {
    if (!(momentum_ >= 0.0 && momentum_ <= 1.0))
      throw ValueError("BatchNormalization: `momentum` must be a number in [0, 1], got momentum=" + num_str(momentum_));
  }

  std::vector<PartialShape> output_shapes(const std::vector<PartialShape>& in) const override {
    check_num_inputs(*this, in.size());
    const PartialShape& s = in[0];
    if (s.size() < 2) detail::ndim_fail(*this, 0, "min_ndim=2", s);
    check_feature_axis(*this, resolve_axis(*this, axis_, s), s);
    return {s};
  }

  std::vector<WeightSpec> weight_specs(const std::vector<PartialShape>& in) const override {
    output_shapes(in);
    const int64_t c = in[0][static_cast<size_t>(resolve_axis(*this, axis_, in[0]))];
    std::vector<WeightSpec> w;
    if (scale_) w.push_back({"gamma", {c}, true});
    if (center_) w.push_back({"beta", {c}, true});
    w.push_back({"moving_mean", {c}, false});
    w.push_back({"moving_variance", {c}, false});
    return w;
  }

  std::vector<Tensor> forward(const std::vector<Tensor>& in, const std::vector<Tensor>& w,
                              Context& ctx) const override {
    check_num_inputs(*this, in.size());
    const size_t nw = 2 + (scale_ ? 1 : 0) + (center_ ? 1 : 0);
    check_num_weights(*this, w, nw);
    Tensor x = as_float(in[0]);
    const PartialShape s = x.shape().dims();
    output_shapes({s});
    const int ax = resolve_axis(*this, axis_, s);
    const int64_t c = s[static_cast<size_t>(ax)];
    for (const Tensor& t : w)
      if (t.numel() != c)
        detail::input_fail(*this, 0, "expected axis " + std::to_string(ax) + " of input shape to have value " +
                                         std::to_string(t.numel()), s);
    size_t k = 0;
    Tensor gamma = scale_ ? cast_like(w[k++], x) : Tensor();
    Tensor beta = center_ ? cast_like(w[k++], x) : Tensor();
    const int mm_index = static_cast<int>(k), mv_index = static_cast<int>(k + 1);
    const Tensor& moving_mean = w[static_cast<size_t>(mm_index)];
    const Tensor& moving_var = w[static_cast<size_t>(mv_index)];

    // Keras 3: a frozen layer (trainable = FALSE) normalizes with its moving statistics even in
    // training and leaves them alone (the usual fine-tuning setup).
    if (!(ctx.training && trainable_))
      return {ops::batch_norm_inference(x, gamma, beta, cast_like(moving_mean, x), cast_like(moving_var, x), ax,
                                        epsilon_)};
    ops::BatchNormResult r = ops::batch_norm_training(x, gamma, beta, ax, epsilon_);
    // Keras 3: moving = moving * momentum + batch * (1 - momentum), with the biased batch
    // variance (ops.moments). Computed off the tape; written by the caller after the step.
    autograd::NoGradGuard ng;
    auto update = [&](const Tensor& moving, const Tensor& batch) {
      Tensor b = ops::reshape(cast_like(batch, moving), {c});
      return ops::add(ops::multiply(moving.detach(), scalar_like(moving, momentum_)),
                      ops::multiply(b, scalar_like(moving, 1.0 - momentum_)));
    };
    ctx.state_updates.emplace_back(mm_index, update(moving_mean, r.mean));
    ctx.state_updates.emplace_back(mv_index, update(moving_var, r.var));
    return {r.y};
  }

 private:
  static Tensor cast_like(const Tensor& t, const Tensor& like) {
    return t.dtype() == like.dtype() ? t : ops::cast(t, like.dtype());
  }
  int64_t axis_;
  double momentum_, epsilon_;
  bool center_, scale_, trainable_;
};

// ----------------------------------------------------------------------- LayerNormalization

// Normalizes each sample over `axis` (one axis or several); gamma/beta have the shape of those
// axes in the order given. rms_scaling (Keras 3): x * gamma / sqrt(var + eps), var still centred.
class LayerNormalization : public Layer {
 public:
  LayerNormalization(const std::string& name, const Attrs& a)
      : Layer("LayerNormalization", name, a),
        axes_(checked_axes(a, "LayerNormalization")),
        epsilon_(checked_epsilon(a)),
        center_(a.flag("center", true)),
        scale_(a.flag("scale", true)),
        rms_(a.flag("rms_scaling", false)) {
  }

  std::vector<PartialShape> output_shapes(const std::vector<PartialShape>& in) const override {
    check_num_inputs(*this, in.size());
    resolved(in[0]);
    return {in[0]};
  }

  std::vector<WeightSpec> weight_specs(const std::vector<PartialShape>& in) const override {
    std::vector<int> ax = resolved(in[0]);
    std::vector<int64_t> shape;
    for (int a : ax) shape.push_back(in[0][static_cast<size_t>(a)]);
    std::vector<WeightSpec> w;
    if (scale_ || rms_) w.push_back({"gamma", shape, true});
    if (center_ && !rms_) w.push_back({"beta", shape, true});
    return w;
  }

  std::vector<Tensor> forward(const std::vector<Tensor>& in, const std::vector<Tensor>& w, Context&) const override {
    check_num_inputs(*this, in.size());
    const bool has_gamma = scale_ || rms_, has_beta = center_ && !rms_;
    check_num_weights(*this, w, (has_gamma ? 1 : 0) + (has_beta ? 1 : 0));
    Tensor x = as_float(in[0]);
    const PartialShape s = x.shape().dims();
    std::vector<int> ax = resolved(s);
    // Not a structured binding: lambdas below capture these (C++17 forbids capturing bindings).
    const std::pair<std::vector<int64_t>, int64_t> norm = normalized_shape(s, ax);
    const std::vector<int64_t>& bshape = norm.first;
    const int64_t n = norm.second;
    auto param = [&](const Tensor& t) {
      if (t.numel() != n)
        detail::input_fail(*this, 0, "expected the normalized axes to hold " + std::to_string(t.numel()) + " values",
                           s);
      Tensor p = t.dtype() == x.dtype() ? t : ops::cast(t, x.dtype());
      return ops::reshape(p, bshape);
    };
    size_t k = 0;
    Tensor gamma = has_gamma ? param(w[k++]) : Tensor();
    Tensor beta = has_beta ? param(w[k++]) : Tensor();
    auto [mean, var] = moments(x, ax);
    if (rms_) return {ops::multiply(ops::multiply(x, rsqrt_eps(var, epsilon_)), gamma)};
    return {normalize(x, mean, var, gamma, beta, epsilon_)};
  }

 private:
  std::vector<int> resolved(const PartialShape& s) const {
    if (s.size() < 2) detail::ndim_fail(*this, 0, "min_ndim=2", s);
    std::vector<int> ax;
    for (int64_t a : axes_) {
      int r = resolve_axis(*this, a, s);
      check_feature_axis(*this, r, s);
      if (std::find(ax.begin(), ax.end(), r) != ax.end())
        detail::layer_fail(*this, "axis " + std::to_string(r) + " is listed twice in `axis`");
      ax.push_back(r);
    }
    return ax;
  }
  std::vector<int64_t> axes_;
  double epsilon_;
  bool center_, scale_, rms_;
};

// ----------------------------------------------------------------------- GroupNormalization

// Splits the channels of `axis` into `groups` groups and normalizes each sample over each group
// (and every other non-batch axis). groups = -1: one group per channel (instance normalization).
class GroupNormalization : public Layer {
 public:
  GroupNormalization(const std::string& name, const Attrs& a)
      : Layer("GroupNormalization", name, a),
        groups_(a.integer("groups", 32)),
        axis_(a.integer("axis", -1)),
        epsilon_(checked_epsilon(a)),
        center_(a.flag("center", true)),
        scale_(a.flag("scale", true)) {
    if (groups_ == 0 || groups_ < -1)
      throw ValueError("GroupNormalization: `groups` must be a positive integer or -1, got groups=" +
                       std::to_string(groups_));
  }

  std::vector<PartialShape> output_shapes(const std::vector<PartialShape>& in) const override {
    check_num_inputs(*this, in.size());
    geometry(in[0]);
    return {in[0]};
  }

  std::vector<WeightSpec> weight_specs(const std::vector<PartialShape>& in) const override {
    auto [ax, g] = geometry(in[0]);
    (void)g;
    const int64_t c = in[0][static_cast<size_t>(ax)];
    std::vector<WeightSpec> w;
    if (scale_) w.push_back({"gamma", {c}, true});
    if (center_) w.push_back({"beta", {c}, true});
    return w;
  }

  std::vector<Tensor> forward(const std::vector<Tensor>& in, const std::vector<Tensor>& w, Context&) const override {
    check_num_inputs(*this, in.size());
    check_num_weights(*this, w, (scale_ ? 1 : 0) + (center_ ? 1 : 0));
    Tensor x = as_float(in[0]);
    const PartialShape s = x.shape().dims();
    auto [ax, g] = geometry(s);
    const int64_t c = s[static_cast<size_t>(ax)];
    // [.., C, ..] -> [.., G, C / G, ..]; reduce over every axis but the batch and the group axis.
    std::vector<int64_t> gshape = s;
    gshape[static_cast<size_t>(ax)] = c / g;
    gshape.insert(gshape.begin() + ax, g);
    Tensor xg = ops::reshape(x, gshape);
    std::vector<int> axes;
    for (int i = 1; i < static_cast<int>(gshape.size()); ++i)
      if (i != ax) axes.push_back(i);
    std::vector<int64_t> bshape(gshape.size(), 1);
    bshape[static_cast<size_t>(ax)] = g;
    bshape[static_cast<size_t>(ax) + 1] = c / g;
    auto param = [&](const Tensor& t) {
      if (t.numel() != c)
        detail::input_fail(*this, 0, "expected axis " + std::to_string(ax) + " of input shape to have value " +
                                         std::to_string(t.numel()), s);
      Tensor p = t.dtype() == x.dtype() ? t : ops::cast(t, x.dtype());
      return ops::reshape(p, bshape);
    };
    size_t k = 0;
    Tensor gamma = scale_ ? param(w[k++]) : Tensor();
    Tensor beta = center_ ? param(w[k++]) : Tensor();
    auto [mean, var] = moments(xg, axes);
    return {ops::reshape(normalize(xg, mean, var, gamma, beta, epsilon_), s)};
  }

 private:
  // (channel axis, number of groups) for input shape s, with Keras's checks.
  std::pair<int, int64_t> geometry(const PartialShape& s) const {
    if (s.size() < 2) detail::ndim_fail(*this, 0, "min_ndim=2", s);
    const int ax = resolve_axis(*this, axis_, s);
    check_feature_axis(*this, ax, s);
    const int64_t c = s[static_cast<size_t>(ax)];
    const int64_t g = groups_ == -1 ? c : groups_;
    if (c < g)
      detail::layer_fail(*this, "Number of groups (" + std::to_string(g) + ") cannot be more than the number of channels (" +
                                    std::to_string(c) + "); input shape " + shape_str(s));
    if (c % g != 0)
      detail::layer_fail(*this, "Number of groups (" + std::to_string(g) + ") must divide the number of channels (" +
                                    std::to_string(c) + "); input shape " + shape_str(s));
    return {ax, g};
  }
  int64_t groups_, axis_;
  double epsilon_;
  bool center_, scale_;
};

// ------------------------------------------------------------------------- RMSNormalization

// Keras 3.9's RMSNormalization: x * scale / sqrt(mean(x^2 over axis) + epsilon) (no centring);
// `scale` has the shape of the (sorted) axes.
class RMSNormalization : public Layer {
 public:
  RMSNormalization(const std::string& name, const Attrs& a)
      : Layer("RMSNormalization", name, a),
        axes_(checked_axes(a, "RMSNormalization")),
        epsilon_(checked_epsilon(a, 1e-6)) {}

  std::vector<PartialShape> output_shapes(const std::vector<PartialShape>& in) const override {
    check_num_inputs(*this, in.size());
    resolved(in[0]);
    return {in[0]};
  }

  std::vector<WeightSpec> weight_specs(const std::vector<PartialShape>& in) const override {
    std::vector<int64_t> shape;
    for (int a : resolved(in[0])) shape.push_back(in[0][static_cast<size_t>(a)]);
    return {{"scale", shape, true}};
  }

  std::vector<Tensor> forward(const std::vector<Tensor>& in, const std::vector<Tensor>& w, Context&) const override {
    check_num_inputs(*this, in.size());
    check_num_weights(*this, w, 1);
    Tensor x = as_float(in[0]);
    const PartialShape s = x.shape().dims();
    std::vector<int> ax = resolved(s);
    // Not a structured binding: lambdas below capture these (C++17 forbids capturing bindings).
    const std::pair<std::vector<int64_t>, int64_t> norm = normalized_shape(s, ax);
    const std::vector<int64_t>& bshape = norm.first;
    const int64_t n = norm.second;
    if (w[0].numel() != n)
      detail::input_fail(*this, 0, "expected the normalized axes to hold " + std::to_string(w[0].numel()) + " values", s);
    Tensor scale = ops::reshape(w[0].dtype() == x.dtype() ? w[0] : ops::cast(w[0], x.dtype()), bshape);
    Tensor ms = ops::mean(ops::square(x), ax, true);
    return {ops::multiply(ops::multiply(x, rsqrt_eps(ms, epsilon_)), scale)};
  }

 private:
  std::vector<int> resolved(const PartialShape& s) const {
    if (s.size() < 2) detail::ndim_fail(*this, 0, "min_ndim=2", s);
    std::vector<int> ax;
    for (int64_t a : axes_) {
      int r = resolve_axis(*this, a, s);
      check_feature_axis(*this, r, s);
      ax.push_back(r);
    }
    std::sort(ax.begin(), ax.end());
    if (std::adjacent_find(ax.begin(), ax.end()) != ax.end())
      detail::layer_fail(*this, "an axis is listed twice in `axis`");
    return ax;
  }
  std::vector<int64_t> axes_;
  double epsilon_;
};

// ------------------------------------------------------------------------ UnitNormalization

// x * rsqrt(max(sum(x^2 over axis), 1e-12)): unit L2 norm over `axis` (Keras 3's formula).
class UnitNormalization : public Layer {
 public:
  UnitNormalization(const std::string& name, const Attrs& a)
      : Layer("UnitNormalization", name, a), axes_(checked_axes(a, "UnitNormalization")) {}

  std::vector<PartialShape> output_shapes(const std::vector<PartialShape>& in) const override {
    check_num_inputs(*this, in.size());
    resolved(in[0]);
    return {in[0]};
  }

  std::vector<Tensor> forward(const std::vector<Tensor>& in, const std::vector<Tensor>&, Context&) const override {
    check_num_inputs(*this, in.size());
    Tensor x = as_float(in[0]);
    std::vector<int> ax = resolved(x.shape().dims());
    Tensor ss = ops::sum(ops::square(x), ax, true);
    Tensor inv = ops::reciprocal(ops::sqrt(ops::maximum(ss, scalar_like(x, 1e-12))));
    return {ops::multiply(x, inv)};
  }

 private:
  std::vector<int> resolved(const PartialShape& s) const {
    if (s.empty()) detail::ndim_fail(*this, 0, "min_ndim=1", s);
    std::vector<int> ax;
    for (int64_t a : axes_) ax.push_back(resolve_axis(*this, a, s));
    return ax;
  }
  std::vector<int64_t> axes_;
};

}  // namespace

void detail::register_norm_layers(Registry& r) {
  r["BatchNormalization"] = detail::layer_factory<BatchNormalization>();
  r["LayerNormalization"] = detail::layer_factory<LayerNormalization>();
  r["GroupNormalization"] = detail::layer_factory<GroupNormalization>();
  r["UnitNormalization"] = detail::layer_factory<UnitNormalization>();
  r["RMSNormalization"] = detail::layer_factory<RMSNormalization>();
}

}  // namespace rk::nn
