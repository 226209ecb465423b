// The training step as Keras 3's Trainer does it: forward (training), compiled loss (per-output
// loss * loss weight, summed) plus regularisation and layer losses, backward, optimizer update,
// constraints, then the loss tracker (a mean weighted by batch size) and the metrics.
// Every fallible part (forward, losses, metric values, gradients, optimizer checks) runs before
// the first weight changes, so a step that throws leaves the model as it was.
#include "nn/trainer.h"

#include <cmath>
#include <string>

#include "autograd/autograd.h"
#include "backend/backend.h"
#include "ops/ops.h"

namespace rk::nn {

namespace {

// Marks the trainable weights as autograd leaves for one step and restores their flags afterwards,
// so tensors that R holds (get_weights) do not start recording history outside training.
class LeafScope {
 public:
  LeafScope(std::vector<Tensor>& weights, const std::vector<int>& idx) : w_(weights), idx_(idx) {
    for (int i : idx_) {
      prev_.push_back(w_[i].requires_grad());
      w_[i].set_requires_grad(true);
      autograd::set_grad(w_[i], Tensor());
    }
  }
  ~LeafScope() {
    for (size_t k = 0; k < idx_.size(); ++k) {
      autograd::set_grad(w_[idx_[k]], Tensor());
      if (!prev_[k]) w_[idx_[k]].set_requires_grad(false);
    }
  }
  LeafScope(const LeafScope&) = delete;
  LeafScope& operator=(const LeafScope&) = delete;

 private:
  std::vector<Tensor>& w_;
  const std::vector<int>& idx_;
  std::vector<bool> prev_;
};

// Restores the thread's grad mode (train_step may be called from a no-grad context).
class GradModeScope {
 public:
  explicit GradModeScope(bool on) : prev_(autograd::grad_enabled()) { autograd::set_grad_enabled(on); }
  ~GradModeScope() { autograd::set_grad_enabled(prev_); }

 private:
  bool prev_;
};

int64_t batch_size_of(const std::vector<Tensor>& xs) {
  for (const auto& x : xs)
    if (x.defined()) return x.rank() == 0 ? 1 : x.size(0);
  return 0;
}

bool is_trainable(const Graph& g, int i) {
  return static_cast<size_t>(i) >= g.trainable.size() || g.trainable[static_cast<size_t>(i)];
}

Tensor as_scalar_sum(const Tensor& t) { return t.rank() == 0 ? t : ops::sum(t); }

// Adds b to a, promoting to the wider float type.
Tensor add_loss(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  return ops::add(a, b);
}

// CPU int32 index vector for ops::take.
Tensor index_tensor(const std::vector<int32_t>& idx, Device device) {
  Tensor t = Tensor::empty(Shape({static_cast<int64_t>(idx.size())}), DType::Int32, cpu_device());
  int32_t* d = t.data<int32_t>();
  for (size_t i = 0; i < idx.size(); ++i) d[i] = idx[i];
  if (device != cpu_device()) {
    Tensor on = Tensor::empty(t.shape(), DType::Int32, device);
    backend_of(on).copy(t, on);
    return on;
  }
  return t;
}

}  // namespace

Trainer::Trainer(std::shared_ptr<Graph> graph, std::vector<LossSpec> losses, std::vector<MetricSpec> metrics,
                 std::shared_ptr<optim::Optimizer> optimizer, std::vector<Regularizer> regularizers,
                 std::vector<std::pair<int, optim::Constraint>> constraints)
    : graph_(std::move(graph)),
      losses_(std::move(losses)),
      metrics_(std::move(metrics)),
      optimizer_(std::move(optimizer)),
      regularizers_(std::move(regularizers)),
      constraints_(std::move(constraints)) {
  if (!graph_) throw ValueError("Trainer: no graph");
  if (!optimizer_) throw ValueError("Trainer: no optimizer");
  const size_t nout = graph_->output_ids.size();
  if (losses_.size() != nout)
    throw ValueError("compile: the model has " + std::to_string(nout) + " output(s) but " +
                     std::to_string(losses_.size()) + " loss(es) were given");
  bool any = false;
  for (const auto& l : losses_) {
    if (l.kind.empty()) continue;
    any = true;
    if (!std::isfinite(l.weight)) throw ValueError("compile: loss weights must be finite numbers");
  }
  if (!any) throw ValueError("No loss to compute. Provide a `loss` argument in `compile()`.");
  const int nw = static_cast<int>(graph_->weights.size());
  for (const auto& m : metrics_)
    if (m.output < 0 || m.output >= static_cast<int>(nout))
      throw ValueError("compile: metric '" + m.name + "' refers to output " + std::to_string(m.output) +
                       " but the model has " + std::to_string(nout) + " output(s)");
  for (const auto& r : regularizers_)
    if (r.index < 0 || r.index >= nw)
      throw ValueError("compile: regularizer on weight " + std::to_string(r.index) + " but the model has " +
                       std::to_string(nw) + " weights");
  for (const auto& [i, c] : constraints_) {
    if (i < 0 || i >= nw)
      throw ValueError("compile: constraint on weight " + std::to_string(i) + " but the model has " +
                       std::to_string(nw) + " weights");
    // Dry run on a copy, so a bad kind or axis fails now rather than after an update.
    autograd::NoGradGuard ng;
    Tensor probe = ops::clone(graph_->weights[i].detach());
    optim::apply_constraint(c, probe);
  }
  for (const auto& m : metrics_) metric_states_.push_back(make_metric(m));
  sums_.assign(1 + nout, 0.0);
  counts_.assign(sums_.size(), 0.0);
}

// --------------------------------------------------------------------------------------------- steps

namespace {

struct StepValues {
  Tensor total;                        ///< scalar, differentiable in training
  std::vector<Tensor> output_losses;   ///< unweighted per-output scalar losses (undefined where none)
  std::vector<std::function<void()>> metric_commits;  ///< prepared metric updates, applied after the step
};

}  // namespace

static StepValues compute_step(const Graph& g, const std::vector<LossSpec>& losses,
                               const std::vector<MetricSpec>& metrics,
                               const std::vector<std::shared_ptr<Metric>>& metric_states,
                               const std::vector<Regularizer>& regs,
                               const std::vector<Tensor>& outs, const std::vector<Tensor>& ys,
                               const Tensor& sample_weight, Context& ctx) {
  StepValues sv;
  if (ys.size() != outs.size())
    throw ValueError("the model has " + std::to_string(outs.size()) + " output(s) but " + std::to_string(ys.size()) +
                     " target(s) were given");
  sv.output_losses.assign(outs.size(), Tensor());
  for (size_t i = 0; i < outs.size(); ++i) {
    if (losses[i].kind.empty()) continue;
    Tensor per_sample = loss_per_sample(losses[i], ys[i], outs[i]);
    Tensor v = reduce_loss(per_sample, sample_weight, losses[i].attrs.str("reduction", "sum_over_batch_size"),
                           loss_output_mask(losses[i].kind, per_sample));
    if (v.rank() != 0) v = ops::sum(v);  // reduction "none": the trainer needs one number
    // Read on the host only after the step is queued (accumulate()): on a GPU each read waits for it.
    sv.output_losses[i] = v.detach();
    if (losses[i].weight != 1.0) v = ops::multiply(v, ops::scalar(losses[i].weight, v.dtype(), v.device()));
    sv.total = add_loss(sv.total, v);
  }
  for (const auto& r : regs) {
    // Keras 3 regularises trainable weights only (Layer._get_regularization_losses).
    if (!is_trainable(g, r.index)) continue;
    const Tensor& w = g.weights[static_cast<size_t>(r.index)];
    if (r.l1 != 0)
      sv.total = add_loss(sv.total, ops::multiply(ops::scalar(r.l1, w.dtype(), w.device()), ops::sum(ops::abs(w))));
    if (r.l2 != 0)
      sv.total = add_loss(sv.total, ops::multiply(ops::scalar(r.l2, w.dtype(), w.device()), ops::sum(ops::square(w))));
  }
  for (const auto& l : ctx.extra_losses) sv.total = add_loss(sv.total, as_scalar_sum(l));
  // Metrics see the predictions of this forward pass (before the update), as in Keras. compile(metrics=)
  // ignores sample weights in Keras 3; only weighted_metrics (attr "weighted") use them.
  for (size_t k = 0; k < metrics.size(); ++k) {
    const MetricSpec& m = metrics[k];
    const size_t o = static_cast<size_t>(m.output);
    sv.metric_commits.push_back(metric_states[k]->prepare(ys[o], outs[o].detach(),
                                                          m.attrs.flag("weighted", false) ? sample_weight : Tensor()));
  }
  return sv;
}

// Trackers: the loss is a mean weighted by batch size (Keras's loss tracker), per-output losses
// likewise; the metrics apply their prepared updates.
static void accumulate(const StepValues& sv, int64_t n, std::vector<double>& sums, std::vector<double>& counts) {
  autograd::NoGradGuard ng;
  const double dn = static_cast<double>(n);
  const double total = sv.total.item();
  sums[0] += total * dn;
  counts[0] += dn;
  for (size_t i = 0; i < sv.output_losses.size(); ++i) {
    const Tensor& v = sv.output_losses[i];
    if (!v.defined()) continue;
    // A single unweighted loss is the total itself: no second read from the device.
    const bool is_total = v.raw_data() == sv.total.raw_data() && v.dtype() == sv.total.dtype();
    sums[1 + i] += (is_total ? total : v.item()) * dn;
    counts[1 + i] += dn;
  }
  for (const auto& commit : sv.metric_commits) commit();
}

void Trainer::train_step(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, const Tensor& sample_weight,
                         Generator& rng) {
  Graph& g = *graph_;
  const std::vector<int> tidx = g.trainable_indices();
  const int64_t n = batch_size_of(xs);
  StepValues sv;
  std::vector<Tensor> grads;
  Context ctx;
  {
    GradModeScope gm(true);
    LeafScope leaves(g.weights, tidx);
    ctx.training = true;
    ctx.rng = &rng;
    std::vector<Tensor> outs = g.forward(xs, ctx);
    sv = compute_step(g, losses_, metrics_, metric_states_, regularizers_, outs, ys, sample_weight, ctx);
    if (sv.total.requires_grad()) {
      // Keras's optimizer.scale_loss(): the gradients are of loss * loss_scale_factor (the optimizer
      // divides them back); the logged loss stays unscaled.
      const double ls = optimizer_->loss_scale_factor();
      autograd::backward(ls == 1.0 ? sv.total
                                   : ops::multiply(sv.total, ops::scalar(ls, sv.total.dtype(), sv.total.device())));
    }
    grads.reserve(tidx.size());
    for (int i : tidx) grads.push_back(autograd::grad(g.weights[static_cast<size_t>(i)]));
    ctx.extra_losses.clear();  // the tape ends here; only the (detached) state updates outlive it
  }
  // Updates: optimizer (checks everything before changing anything), constraints, layer state.
  if (!tidx.empty()) {
    std::vector<Tensor> params;
    params.reserve(tidx.size());
    for (int i : tidx) params.push_back(g.weights[static_cast<size_t>(i)]);
    optimizer_->step(params, grads);
  }
  autograd::NoGradGuard ng;
  // Keras 3 applies constraints to the variables the optimizer updated (trainable ones).
  for (auto& [i, c] : constraints_)
    if (is_trainable(g, i)) optim::apply_constraint(c, g.weights[static_cast<size_t>(i)]);
  apply_state_updates(ctx, g.weights);

  // The loss is read only now, with the whole step queued (one wait per step on a GPU).
  accumulate(sv, n, sums_, counts_);
}

void Trainer::test_step(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, const Tensor& sample_weight) {
  autograd::NoGradGuard ng;
  Graph& g = *graph_;
  const int64_t n = batch_size_of(xs);
  Context ctx;
  ctx.training = false;
  std::vector<Tensor> outs = g.forward(xs, ctx);
  StepValues sv = compute_step(g, losses_, metrics_, metric_states_, regularizers_, outs, ys, sample_weight, ctx);
  accumulate(sv, n, sums_, counts_);
}

std::vector<Tensor> Trainer::predict_step(const std::vector<Tensor>& xs) const {
  autograd::NoGradGuard ng;
  Context ctx;
  ctx.training = false;
  return graph_->forward(xs, ctx);
}

int64_t Trainer::run_epoch(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys, const Tensor& sample_weight,
                           const std::vector<std::vector<int32_t>>& batches, Generator& rng,
                           const std::function<bool(int64_t, const std::vector<LogEntry>&)>& on_batch) {
  int64_t done = 0;
  for (const auto& b : batches) {
    std::vector<Tensor> bx, by;
    Tensor bsw;
    {
      autograd::NoGradGuard ng;
      // take() checks indices on the host and sends them to the data's device itself.
      Tensor idx = index_tensor(b, cpu_device());
      // A data set too large for the model's device stays on the host; each batch is sent over.
      const Device dev = graph_->weights.empty() ? (xs.empty() ? cpu_device() : xs[0].device())
                                                 : graph_->weights[0].device();
      for (const auto& x : xs) bx.push_back(ops::to_device(ops::take(x, idx, 0), dev));
      for (const auto& y : ys) by.push_back(y.defined() ? ops::to_device(ops::take(y, idx, 0), dev) : Tensor());
      if (sample_weight.defined()) bsw = ops::to_device(ops::take(sample_weight, idx, 0), dev);
    }
    train_step(bx, by, bsw, rng);
    ++done;
    if (on_batch && !on_batch(done, logs())) break;
  }
  return done;
}

// ---------------------------------------------------------------------------------------------- logs

std::vector<LogEntry> Trainer::logs() const {
  auto mean = [&](size_t k) { return counts_[k] > 0 ? sums_[k] / counts_[k] : 0.0; };
  std::vector<LogEntry> out;
  out.push_back({"loss", mean(0)});
  const size_t nout = graph_->output_ids.size();
  if (nout > 1) {
    for (size_t i = 0; i < nout; ++i) {
      if (losses_[i].kind.empty()) continue;
      std::string name = losses_[i].attrs.str("output_name", "");
      if (name.empty()) {
        // The Keras output name is the name of the layer producing the output.
        const int id = graph_->output_ids[i];
        for (const auto& node : graph_->nodes)
          for (int o : node.outputs)
            if (o == id && node.layer) name = node.layer->name();
        if (name.empty()) name = "output_" + std::to_string(i + 1);
      }
      out.push_back({name + "_loss", mean(1 + i)});
    }
  }
  for (size_t k = 0; k < metrics_.size(); ++k) {
    std::string name = metrics_[k].name.empty() ? metrics_[k].kind : metrics_[k].name;
    if (metrics_[k].name.empty() && nout > 1) {
      std::string on = metrics_[k].attrs.str("output_name", "");
      if (!on.empty()) name = on + "_" + name;
    }
    // A metric with several values (per threshold or class) logs each as <name>_<0-based index>.
    std::vector<double> r = metric_states_[k]->result();
    if (r.size() == 1) out.push_back({name, r[0]});
    else
      for (size_t i = 0; i < r.size(); ++i) out.push_back({name + "_" + std::to_string(i), r[i]});
  }
  return out;
}

void Trainer::reset_metrics() {
  std::fill(sums_.begin(), sums_.end(), 0.0);
  std::fill(counts_.begin(), counts_.end(), 0.0);
  for (auto& m : metric_states_) m->reset();
}

}  // namespace rk::nn
