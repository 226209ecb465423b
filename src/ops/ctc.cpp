// Connectionist temporal classification loss (Graves et al., 2006) as Keras 3's ops.ctc_loss
// defines it: logits are log-softmaxed over classes, the label sequence is the first
// target_length entries of each target row, and `mask_index` is the blank. The forward pass is
// the log-space alpha recursion over the extended sequence (blank, l1, blank, l2, ..., blank);
// when autograd needs it, the beta recursion gives each state's posterior occupancy and hence
// d loss / d logits = softmax - occupancy per class, computed here and replayed by the backward.
// A label equal to the blank class still counts as a label position (as Keras's JAX/NumPy
// backends treat it): skips between label states are blocked only by repeated labels.
// Samples are independent, so the batch is split across threads. Everything runs in double.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backend/cpu/parallel_for.h"
#include "ops/ops.h"

namespace rk::ops {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double log_add(double a, double b) {
  if (a == kNegInf) return b;
  if (b == kNegInf) return a;
  const double m = std::max(a, b);
  return m + std::log1p(std::exp(-std::fabs(a - b)));
}

// Integer values of `x` (int32 or integral floats) as int64, or a ValueError naming `what`.
std::vector<int64_t> int_values(const Tensor& x, const char* what) {
  Tensor c = to_device(x.detach(), cpu_device());  // labels and lengths are read on the host
  std::vector<int64_t> out(static_cast<size_t>(c.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    double v = 0;
    switch (c.dtype()) {
      case DType::Int32: v = c.data<int32_t>()[i]; break;
      case DType::Float32: v = c.data<float>()[i]; break;
      case DType::Float64: v = c.data<double>()[i]; break;
      case DType::Bool: v = c.data<uint8_t>()[i]; break;
    }
    if (!std::isfinite(v) || v != std::floor(v))
      throw ValueError(std::string("ctc_loss: ") + what + " must hold whole numbers, got " + std::to_string(v));
    out[i] = static_cast<int64_t>(v);
  }
  return out;
}

// Per-sample lengths: `len` [B] if defined, else `full` for every sample; each within [0, full].
std::vector<int64_t> lengths(const Tensor& len, int64_t batch, int64_t full, const char* what) {
  if (!len.defined()) return std::vector<int64_t>(static_cast<size_t>(batch), full);
  if (len.rank() != 1 || len.size(0) != batch)
    throw ShapeError(std::string("ctc_loss: ") + what + " must have shape (" + std::to_string(batch) + "), got " +
                     len.shape().str());
  std::vector<int64_t> v = int_values(len, what);
  for (int64_t x : v)
    if (x < 0 || x > full)
      throw ValueError(std::string("ctc_loss: ") + what + " must be in [0, " + std::to_string(full) + "], got " +
                       std::to_string(x));
  return v;
}

struct CtcProblem {
  int64_t batch, time, classes, max_label;
  int64_t blank;
  std::vector<int64_t> labels, label_len, time_len;
};

// One sample: returns -log p(label | logits) and, if `grad` is non-null, writes d loss / d logits
// ([time, classes], zero beyond the sample's length). `x` points at the sample's logits.
template <typename T>
double ctc_sample(const CtcProblem& pr, int64_t b, const T* x, double* grad) {
  const int64_t C = pr.classes, Tn = pr.time_len[static_cast<size_t>(b)], L = pr.label_len[static_cast<size_t>(b)];
  const int64_t* lab = pr.labels.data() + b * pr.max_label;
  const int64_t S = 2 * L + 1;
  // log-softmax of each frame.
  std::vector<double> lp(static_cast<size_t>(std::max<int64_t>(Tn, 1) * C));
  for (int64_t t = 0; t < Tn; ++t) {
    const T* row = x + t * C;
    double m = kNegInf;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, static_cast<double>(row[c]));
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += std::exp(static_cast<double>(row[c]) - m);
    const double lse = m + std::log(s);
    for (int64_t c = 0; c < C; ++c) lp[static_cast<size_t>(t * C + c)] = static_cast<double>(row[c]) - lse;
  }
  auto sym = [&](int64_t s) { return (s % 2 == 0) ? pr.blank : lab[(s - 1) / 2]; };
  // Entering label state s (odd) from s - 2 skips a blank: allowed unless the labels repeat.
  auto can_skip = [&](int64_t s) { return s % 2 == 1 && s >= 3 && lab[(s - 1) / 2] != lab[(s - 3) / 2]; };
  auto emit = [&](int64_t t, int64_t s) { return lp[static_cast<size_t>(t * C + sym(s))]; };

  if (Tn == 0) {
    // No frames: only the empty label has probability (1).
    if (grad) std::fill(grad, grad + pr.time * C, 0.0);
    return L == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  }
  std::vector<double> alpha(static_cast<size_t>(Tn * S), kNegInf);
  auto A = [&](int64_t t, int64_t s) -> double& { return alpha[static_cast<size_t>(t * S + s)]; };
  A(0, 0) = emit(0, 0);
  if (S > 1) A(0, 1) = emit(0, 1);
  for (int64_t t = 1; t < Tn; ++t)
    for (int64_t s = 0; s < S; ++s) {
      double a = A(t - 1, s);
      if (s >= 1) a = log_add(a, A(t - 1, s - 1));
      if (can_skip(s)) a = log_add(a, A(t - 1, s - 2));
      A(t, s) = a == kNegInf ? kNegInf : a + emit(t, s);
    }
  double loglik = A(Tn - 1, S - 1);
  if (S > 1) loglik = log_add(loglik, A(Tn - 1, S - 2));
  if (!grad) return -loglik;

  std::fill(grad, grad + pr.time * C, 0.0);
  // An impossible alignment (too few frames) has an infinite loss and no useful gradient.
  if (loglik == kNegInf) return std::numeric_limits<double>::infinity();
  // beta(t, s): log-probability of emitting frames t+1.. from state s at frame t.
  std::vector<double> beta(static_cast<size_t>(Tn * S), kNegInf);
  auto B = [&](int64_t t, int64_t s) -> double& { return beta[static_cast<size_t>(t * S + s)]; };
  B(Tn - 1, S - 1) = 0;
  if (S > 1) B(Tn - 1, S - 2) = 0;
  for (int64_t t = Tn - 2; t >= 0; --t)
    for (int64_t s = 0; s < S; ++s) {
      double v = B(t + 1, s) + emit(t + 1, s);
      if (s + 1 < S) v = log_add(v, B(t + 1, s + 1) + emit(t + 1, s + 1));
      if (s + 2 < S && can_skip(s + 2)) v = log_add(v, B(t + 1, s + 2) + emit(t + 1, s + 2));
      B(t, s) = v;
    }
  // d(-loglik)/d logit(t, c) = softmax(t, c) * sum_s occ(t, s) - sum_{s: sym(s) = c} occ(t, s).
  for (int64_t t = 0; t < Tn; ++t) {
    double* g = grad + t * C;
    double total = 0;
    for (int64_t s = 0; s < S; ++s) {
      const double lo = A(t, s) + B(t, s);
      if (lo == kNegInf) continue;
      const double occ = std::exp(lo - loglik);
      g[sym(s)] -= occ;
      total += occ;
    }
    for (int64_t c = 0; c < C; ++c) g[c] += std::exp(lp[static_cast<size_t>(t * C + c)]) * total;
  }
  return -loglik;
}

template <typename T>
void ctc_batch(const CtcProblem& pr, const Tensor& logits, Tensor& loss, double* grad) {
  const T* x = logits.data<T>();
  T* out = loss.data<T>();
  const int64_t frame = pr.time * pr.classes;
  cpu::parallel_for(pr.batch, pr.batch > 1 && frame * (2 * pr.max_label + 1) > 256, [&](int64_t b) {
    out[b] = static_cast<T>(ctc_sample<T>(pr, b, x + b * frame, grad ? grad + b * frame : nullptr));
  });
}

}  // namespace

Tensor ctc_loss(const Tensor& target, const Tensor& output, const Tensor& target_length,
                const Tensor& output_length, int64_t mask_index) {
  const char* op = "ctc_loss";
  if (!output.defined() || !target.defined()) throw ValueError("ctc_loss: target and output must be defined");
  if (!is_floating(output.dtype())) throw_dtype_error(op, output.dtype(), "float32 or float64 logits");
  if (output.device().type != DeviceType::CPU) {
    // The dynamic program is host code (no device kernel): the logits go to the host, and the loss
    // comes back to their device; to_device's recorded backward returns the gradient there too.
    const Device device = output.device();
    return to_device(ctc_loss(target, to_device(output, cpu_device()), target_length, output_length, mask_index),
                     device);
  }
  if (target.rank() != 2)
    throw ShapeError("ctc_loss: target must have shape (batch_size, max_length), got " + target.shape().str());
  if (output.rank() != 3)
    throw ShapeError("ctc_loss: output must have shape (batch_size, max_length, num_classes), got " +
                     output.shape().str());
  if (target.size(0) != output.size(0))
    throw ShapeError("ctc_loss: target shape " + target.shape().str() + " and output shape " + output.shape().str() +
                     " differ in batch size");
  CtcProblem pr;
  pr.batch = output.size(0);
  pr.time = output.size(1);
  pr.classes = output.size(2);
  pr.max_label = target.size(1);
  pr.blank = mask_index;
  if (mask_index < 0 || mask_index >= pr.classes)
    throw ValueError("ctc_loss: mask_index must be a class in [0, " + std::to_string(pr.classes - 1) + "], got " +
                     std::to_string(mask_index));
  pr.labels = int_values(target, "target");
  for (int64_t v : pr.labels)
    if (v < 0 || v >= pr.classes)
      throw IndexError("ctc_loss: label " + std::to_string(v) + " is out of range for " +
                       std::to_string(pr.classes) + " classes");
  pr.label_len = lengths(target_length, pr.batch, pr.max_label, "target_length");
  pr.time_len = lengths(output_length, pr.batch, pr.time, "output_length");

  const DType dt = output.dtype();
  Tensor loss = Tensor::empty(Shape({pr.batch}), dt, output.device());
  const bool want_grad = autograd::needs_grad({output});
  Tensor grad;  // d loss_b / d output, float64, [B, T, C]
  if (want_grad) grad = Tensor::empty(output.shape(), DType::Float64, output.device());
  double* gp = want_grad ? grad.data<double>() : nullptr;
  if (dt == DType::Float32) ctc_batch<float>(pr, output, loss, gp);
  else ctc_batch<double>(pr, output, loss, gp);
  if (want_grad) {
    Tensor g_out = cast(grad, dt);
    const Shape col({pr.batch, 1, 1});
    autograd::record(op, loss, {output}, [g_out, col](const Tensor& g) {
      return std::vector<Tensor>{multiply(g.view_as_shape(col), g_out)};
    });
  }
  return loss;
}

}  // namespace rk::ops
