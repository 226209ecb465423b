// Keras 3 optimizers. The base class owns the common tail (gradient clipping, decoupled weight
// decay, the iteration count, slot creation); each rule is one fused backend kernel call per
// parameter (Backend::optimizer_update), which also applies the clipping and the weight decay,
// so a plain step touches every parameter, gradient and slot exactly once.
#include "optim/optimizer.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "autograd/autograd.h"
#include "backend/backend.h"
#include "ops/ops.h"

namespace rk::optim {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string num_str(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// A setting that may be None (absent or NA): returns NaN for None.
double optional_num(const nn::Attrs& a, const std::string& key) { return a.has(key) ? a.num(key, kNaN) : kNaN; }

// Optimizers whose rule is a fused backend kernel. The base step() hands them the clipping scale
// of the current parameter through `tail_` so the kernel applies it in the same pass.
class FusedOptimizer : public Optimizer {
 public:
  FusedOptimizer(std::string kind, nn::Attrs attrs, OptimizerRule rule)
      : Optimizer(std::move(kind), std::move(attrs)), rule_(rule) {}

  /// Set by Optimizer::step() before each update(): gradient scale and clip value of this param.
  double grad_scale_ = 1;
  double clip_value_ = 0;
  double weight_decay_ = 0;

 protected:
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots) override {
    OptimizerHyper h = hyper_;
    h.lr = lr_;
    h.step = iterations_ + 1;
    h.grad_scale = grad_scale_;
    h.clip_value = clip_value_;
    h.weight_decay = weight_decay_;
    backend_of(param).optimizer_update(rule_, param, grad, slots, h);
  }

  OptimizerRule rule_;
  OptimizerHyper hyper_;
};

class SGD final : public FusedOptimizer {
 public:
  explicit SGD(const nn::Attrs& a) : FusedOptimizer("sgd", a, OptimizerRule::SGD) {
    hyper_.momentum = a.num("momentum", 0.0);
    hyper_.nesterov = a.flag("nesterov", false);
    if (!(hyper_.momentum >= 0 && hyper_.momentum <= 1))
      throw ValueError("`momentum` must be a float between [0, 1]. Received: momentum=" + num_str(hyper_.momentum));
  }

 protected:
  int num_slots() const override { return hyper_.momentum != 0 ? 1 : 0; }
};

class Adam final : public FusedOptimizer {
 public:
  Adam(const std::string& kind, const nn::Attrs& a) : FusedOptimizer(kind, a, OptimizerRule::Adam) {
    hyper_.beta_1 = a.num("beta_1", 0.9);
    hyper_.beta_2 = a.num("beta_2", 0.999);
    hyper_.epsilon = a.num("epsilon", 1e-7);
    hyper_.amsgrad = a.flag("amsgrad", false);
    for (auto [name, v] : {std::pair<const char*, double>{"beta_1", hyper_.beta_1}, {"beta_2", hyper_.beta_2}})
      if (!(v >= 0 && v < 1))
        throw ValueError(std::string("`") + name + "` must be in [0, 1). Received: " + name + "=" + num_str(v));
  }

 protected:
  int num_slots() const override { return hyper_.amsgrad ? 3 : 2; }
};

class RMSprop final : public FusedOptimizer {
 public:
  explicit RMSprop(const nn::Attrs& a) : FusedOptimizer("rmsprop", a, OptimizerRule::RMSprop) {
    hyper_.rho = a.num("rho", 0.9);
    hyper_.momentum = a.num("momentum", 0.0);
    hyper_.epsilon = a.num("epsilon", 1e-7);
    hyper_.centered = a.flag("centered", false);
    if (!(hyper_.momentum >= 0))
      throw ValueError("`momentum` must be >= 0. Received: momentum=" + num_str(hyper_.momentum));
  }

 protected:
  int num_slots() const override { return 1 + (hyper_.momentum > 0 ? 1 : 0) + (hyper_.centered ? 1 : 0); }
};

class Adagrad final : public FusedOptimizer {
 public:
  explicit Adagrad(const nn::Attrs& a) : FusedOptimizer("adagrad", a, OptimizerRule::Adagrad) {
    hyper_.epsilon = a.num("epsilon", 1e-7);
    init_ = a.num("initial_accumulator_value", 0.1);
    if (!(init_ >= 0))
      throw ValueError("`initial_accumulator_value` must be non-negative. Received: initial_accumulator_value=" +
                       num_str(init_));
  }

 protected:
  int num_slots() const override { return 1; }
  double slot_initial_value(int) const override { return init_; }

 private:
  double init_;
};

double default_learning_rate(const std::string& kind) { return kind == "sgd" ? 0.01 : 0.001; }

}  // namespace

// ------------------------------------------------------------------------------------------ base

Optimizer::Optimizer(std::string kind, nn::Attrs attrs) : kind_(std::move(kind)), attrs_(std::move(attrs)) {
  lr_ = attrs_.num("learning_rate", default_learning_rate(kind_));
  if (!std::isfinite(lr_) || lr_ < 0)
    throw ValueError("`learning_rate` must be a non-negative number. Received: learning_rate=" + num_str(lr_));
  // Keras 3: at most one of the clipping settings (None = absent or NA).
  const double clipnorm = optional_num(attrs_, "clipnorm"), clipvalue = optional_num(attrs_, "clipvalue"),
               global = optional_num(attrs_, "global_clipnorm");
  int set = !std::isnan(clipnorm) + !std::isnan(clipvalue) + !std::isnan(global);
  if (set > 1)
    throw ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: clipnorm=" +
                     (std::isnan(clipnorm) ? std::string("None") : num_str(clipnorm)) +
                     ", clipvalue=" + (std::isnan(clipvalue) ? std::string("None") : num_str(clipvalue)) +
                     ", global_clipnorm=" + (std::isnan(global) ? std::string("None") : num_str(global)));
  for (auto [name, v] : {std::pair<const char*, double>{"clipnorm", clipnorm}, {"clipvalue", clipvalue},
                         {"global_clipnorm", global}, {"weight_decay", optional_num(attrs_, "weight_decay")}})
    if (!std::isnan(v) && (v < 0 || std::isinf(v)))
      throw ValueError(std::string("`") + name + "` must be a non-negative number or None. Received: " + name +
                       "=" + num_str(v));
}

double Optimizer::slot_initial_value(int) const { return 0.0; }

const std::vector<Tensor>& Optimizer::slots(size_t i) const {
  static const std::vector<Tensor> none;
  return i < slots_.size() ? slots_[i] : none;
}

void Optimizer::reset() {
  slots_.clear();
  iterations_ = 0;
}

void Optimizer::step(std::vector<Tensor>& params, const std::vector<Tensor>& grads) {
  // Everything is checked before the first parameter changes, so a failing step leaves the
  // weights and the optimizer state as they were.
  if (params.size() != grads.size())
    throw ShapeError(kind_ + " optimizer: " + std::to_string(params.size()) + " variables but " +
                     std::to_string(grads.size()) + " gradients");
  if (!slots_.empty() && slots_.size() != params.size())
    throw ValueError(kind_ + " optimizer: its state was built for " + std::to_string(slots_.size()) +
                     " variables, got " + std::to_string(params.size()) +
                     "; use a new optimizer (or reset it) for a different set of variables");
  std::vector<Tensor> g(grads.size());
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].defined()) throw ValueError(kind_ + " optimizer: variable " + std::to_string(i) + " is undefined");
    if (!is_floating(params[i].dtype()))
      throw_dtype_error("optimizer step (variable)", params[i].dtype(), "float32 or float64");
    if (!grads[i].defined()) continue;
    if (grads[i].shape() != params[i].shape())
      throw ShapeError(kind_ + " optimizer: gradient " + std::to_string(i) + " has shape " + grads[i].shape().str() +
                       " but its variable has shape " + params[i].shape().str());
    if (!slots_.empty() && num_slots() > 0 && slots_[i].size() == static_cast<size_t>(num_slots()) &&
        slots_[i][0].shape() != params[i].shape())
      throw ShapeError(kind_ + " optimizer: variable " + std::to_string(i) + " has shape " +
                       params[i].shape().str() + " but its optimizer state has shape " +
                       slots_[i][0].shape().str());
    g[i] = grads[i].detach();
    if (g[i].dtype() != params[i].dtype() || g[i].device() != params[i].device()) {
      autograd::NoGradGuard ng;
      g[i] = ops::cast(g[i], params[i].dtype());
    }
  }

  autograd::NoGradGuard ng;
  // Clipping (Keras 3 _clip_gradients): clipnorm per variable, else global_clipnorm, else clipvalue.
  const double clipnorm = optional_num(attrs_, "clipnorm"), clipvalue = optional_num(attrs_, "clipvalue"),
               global = optional_num(attrs_, "global_clipnorm");
  std::vector<double> scale(params.size(), 1.0);
  if (clipnorm > 0) {
    for (size_t i = 0; i < g.size(); ++i) {
      if (!g[i].defined()) continue;
      double l2 = std::sqrt(ops::sum(ops::square(ops::cast(g[i], DType::Float64))).item());
      // g * clipnorm / max(norm, clipnorm); a zero norm leaves g as it is.
      scale[i] = clipnorm / std::max(l2, clipnorm);
    }
  } else if (global > 0) {
    double sq = 0;
    for (auto& gi : g)
      if (gi.defined()) sq += ops::sum(ops::square(ops::cast(gi, DType::Float64))).item();
    const double norm = std::sqrt(sq);
    // clip * min(1/norm, 1/clip), and NaN when the norm is not finite (Keras's "+ (norm - norm)").
    double s = global * std::min(1.0 / norm, 1.0 / global) + (norm - norm);
    std::fill(scale.begin(), scale.end(), s);
  }
  const double clip_value = clipvalue > 0 ? clipvalue : 0.0;
  double wd = optional_num(attrs_, "weight_decay");
  if (std::isnan(wd)) wd = 0;

  // Slots are created on the first step (Keras builds them from the variables).
  if (slots_.empty()) {
    std::vector<std::vector<Tensor>> fresh(params.size());
    for (size_t i = 0; i < params.size(); ++i)
      for (int k = 0; k < num_slots(); ++k)
        fresh[i].push_back(ops::full(params[i].shape(), slot_initial_value(k), params[i].dtype(), params[i].device()));
    slots_ = std::move(fresh);
  }

  auto* fused = dynamic_cast<FusedOptimizer*>(this);
  for (size_t i = 0; i < params.size(); ++i) {
    if (!g[i].defined()) continue;
    if (fused) {
      fused->grad_scale_ = scale[i];
      fused->clip_value_ = clip_value;
      fused->weight_decay_ = wd;
      update(params[i], g[i], slots_[i]);
    } else {
      // A rule from elsewhere: clip and decay with ops, then its own update.
      Tensor gi = g[i];
      if (scale[i] != 1.0) gi = ops::multiply(gi, ops::scalar(scale[i], gi.dtype(), gi.device()));
      if (clip_value > 0) gi = ops::clip(gi, -clip_value, clip_value);
      if (wd != 0) {
        Tensor decayed = ops::multiply(params[i], ops::scalar(1.0 - wd * lr_, params[i].dtype(), params[i].device()));
        backend_of(params[i]).copy(decayed, params[i]);
      }
      update(params[i], gi, slots_[i]);
    }
  }
  ++iterations_;
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& kind, const nn::Attrs& attrs) {
  if (kind == "sgd") return std::make_unique<SGD>(attrs);
  if (kind == "adam") return std::make_unique<Adam>("adam", attrs);
  if (kind == "adamw") {
    // Keras 3 AdamW: Adam with decoupled weight decay, default 0.004 (and it must not be None).
    nn::Attrs a = attrs;
    if (!a.has("weight_decay")) a.set("weight_decay", std::vector<double>{0.004});
    if (std::isnan(a.num("weight_decay", 0.004)))
      throw ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None");
    return std::make_unique<Adam>("adamw", a);
  }
  if (kind == "rmsprop") return std::make_unique<RMSprop>(attrs);
  if (kind == "adagrad") return std::make_unique<Adagrad>(attrs);
  throw ValueError("Could not interpret optimizer identifier: '" + kind +
                   "'; expected one of 'sgd', 'adam', 'adamw', 'rmsprop', 'adagrad'");
}

// ----------------------------------------------------------------------------------- constraints

void apply_constraint(const Constraint& c, Tensor& w) {
  if (c.kind.empty()) return;
  if (!w.defined() || !is_floating(w.dtype())) throw_dtype_error("apply_constraint", w.dtype(), "float32 or float64");
  autograd::NoGradGuard ng;
  const double eps = c.attrs.num("epsilon", 1e-7);  // Keras backend.epsilon()
  auto axes = [&]() {
    std::vector<int64_t> a = c.attrs.ints("axis");
    if (a.empty() && !c.attrs.has("axis")) a = {0};  // Keras default axis = 0
    std::vector<int> out;
    for (int64_t v : a) {
      if (v < -w.rank() || v >= w.rank())
        throw IndexError("constraint " + c.kind + ": axis " + std::to_string(v) + " is out of range for a weight of shape " +
                         w.shape().str());
      out.push_back(static_cast<int>(v));
    }
    return out;
  };
  auto norms_of = [&](const std::vector<int>& ax) { return ops::sqrt(ops::sum(ops::square(w), ax, true)); };
  auto eps_t = [&]() { return ops::scalar(eps, w.dtype(), w.device()); };

  Tensor out;
  const std::string& k = c.kind;
  if (k == "non_neg" || k == "NonNeg") {
    out = ops::maximum(w, ops::scalar(0.0, w.dtype(), w.device()));
  } else if (k == "max_norm" || k == "MaxNorm") {
    Tensor norms = norms_of(axes());
    Tensor desired = ops::clip(norms, 0.0, c.attrs.num("max_value", 2.0));
    out = ops::multiply(w, ops::divide(desired, ops::add(eps_t(), norms)));
  } else if (k == "unit_norm" || k == "UnitNorm") {
    Tensor norms = norms_of(axes());
    out = ops::divide(w, ops::add(eps_t(), norms));
  } else if (k == "min_max_norm" || k == "MinMaxNorm") {
    const double lo = c.attrs.num("min_value", 0.0), hi = c.attrs.num("max_value", 1.0),
                 rate = c.attrs.num("rate", 1.0);
    Tensor norms = norms_of(axes());
    // rate * clip(norms, lo, hi) + (1 - rate) * norms
    Tensor desired = ops::add(ops::multiply(ops::scalar(rate, w.dtype(), w.device()), ops::clip(norms, lo, hi)),
                              ops::multiply(ops::scalar(1.0 - rate, w.dtype(), w.device()), norms));
    out = ops::multiply(w, ops::divide(desired, ops::add(eps_t(), norms)));
  } else {
    throw ValueError("Unknown constraint: '" + k + "'; expected one of 'max_norm', 'min_max_norm', 'non_neg', "
                     "'unit_norm'");
  }
  backend_of(w).copy(out, w);
}

}  // namespace rk::optim
