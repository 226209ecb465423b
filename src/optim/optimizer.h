// Optimizers with Keras 3's update rules, applied in place to weight tensors (under no-grad).
// Slots (moments, accumulators) are engine tensors, created lazily on the first step.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "nn/attrs.h"

namespace rk::optim {

/// A weight constraint applied after each update (Keras: max_norm, min_max_norm, non_neg, unit_norm).
struct Constraint {
  std::string kind;  ///< "" = none
  nn::Attrs attrs;   ///< max_value, min_value, rate, axis (0-based, Keras's axis list)
};
/// Applies `c` to `w` in place.
void apply_constraint(const Constraint& c, Tensor& w);

/// Base optimizer: the common tail (clipping, weight decay, iteration count) and slots.
class Optimizer {
 public:
  /// `attrs`: learning_rate and the kind's hyper-parameters; clipnorm, clipvalue, global_clipnorm,
  /// weight_decay (NaN or absent = off), with Keras 3 defaults when absent.
  Optimizer(std::string kind, nn::Attrs attrs);
  virtual ~Optimizer() = default;

  /// One update of every (param, grad) pair in place: clipping, weight decay, the rule, then iterations++.
  /// params and grads align; an undefined grad skips that param. Throws ShapeError on a mismatch.
  void step(std::vector<Tensor>& params, const std::vector<Tensor>& grads);

  double learning_rate() const { return lr_; }
  /// Changes the learning rate (schedules, callbacks).
  void set_learning_rate(double lr) { lr_ = lr; }
  /// Updates performed so far (Keras's `iterations`).
  int64_t iterations() const { return iterations_; }
  void set_iterations(int64_t it) { iterations_ = it; }
  const std::string& kind() const { return kind_; }
  /// Slot tensors of param `i` in Keras's variable order (e.g. Adam: m, v[, vhat]); empty before the first step.
  const std::vector<Tensor>& slots(size_t i) const;
  /// Drops all slots and resets iterations (a fresh optimizer state).
  void reset();

 protected:
  /// The kind's rule for one param; `slots` has been sized by num_slots() and zero/initial-filled.
  virtual void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& slots) = 0;
  /// Number of slots per param.
  virtual int num_slots() const = 0;
  /// Initial value of slot `k` (default 0).
  virtual double slot_initial_value(int k) const;

  std::string kind_;
  nn::Attrs attrs_;
  double lr_;
  int64_t iterations_ = 0;
  std::vector<std::vector<Tensor>> slots_;
};

/// Creates an optimizer of Keras kind "sgd", "adam", "adamw", "rmsprop", "adagrad"; ValueError if unknown.
std::unique_ptr<Optimizer> make_optimizer(const std::string& kind, const nn::Attrs& attrs);

}  // namespace rk::optim
