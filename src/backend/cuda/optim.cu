// Fused optimizer updates on the GPU: one kernel per parameter does the gradient scaling and
// clipping, decoupled weight decay and the rule, with the CPU backend's formulas (Keras 3) for
// every OptimizerRule (backend/cpu/optim.cpp is the reference, line for line).
// The GPU contracts a*b+c into fused multiply-adds, so results match the CPU to rounding.
#include <cmath>
#include <string>

#include "backend/cuda/cuda_backend.cuh"
#include "backend/cuda/kernels.cuh"

namespace rk::cuda {

namespace {

// Per-parameter constants of one update, computed on the host in double as the CPU does.
template <typename T>
struct Coeffs {
  T scale, clip, decay, lr, eps, mom, c1, c2, alpha, rho, crho, b1, b2, bc, nadam_a, nadam_bg, vc;
  T l2r, l2s2, l1, np;
  bool do_clip, do_decay, nesterov, use_mom, centered;
};

// One kernel per rule (the rule is a template argument, so each kernel holds only its own code and
// registers). s0..s2 are the rule's slots in the order documented in backend.h.
template <OptimizerRule R, typename T>
__global__ void update_kernel(T* p, const T* g, T* s0, T* s1, T* s2, Coeffs<T> k, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    T gi = g[i] * k.scale;
    if (k.do_clip) gi = fmin(fmax(gi, -k.clip), k.clip);
    const T w = k.do_decay ? p[i] * k.decay : p[i];
    if constexpr (R == OptimizerRule::SGD) {
      if (!s0) {
        p[i] = w - k.lr * gi;
      } else {
        const T mi = s0[i] * k.mom - gi * k.lr;
        s0[i] = mi;
        p[i] = k.nesterov ? w + (mi * k.mom - gi * k.lr) : w + mi;
      }
    } else if constexpr (R == OptimizerRule::Adam) {
      const T mi = s0[i] + (gi - s0[i]) * k.c1;
      const T vi = s1[i] + (gi * gi - s1[i]) * k.c2;
      s0[i] = mi;
      s1[i] = vi;
      T vh = vi;
      if (s2) {
        vh = fmax(s2[i], vi);
        s2[i] = vh;
      }
      p[i] = w - (mi * k.alpha) / (sqrt(vh) + k.eps);
    } else if constexpr (R == OptimizerRule::RMSprop) {  // s0 velocity, s1 momentum, s2 average gradient
      const T vi = k.rho * s0[i] + k.crho * (gi * gi);
      s0[i] = vi;
      T den;
      if (k.centered) {
        const T ai = k.rho * s2[i] + k.crho * gi;
        s2[i] = ai;
        den = vi - ai * ai + k.eps;
      } else {
        den = vi + k.eps;
      }
      const T inc = (k.lr * gi) / sqrt(den);
      if (k.use_mom) {
        const T mi = k.mom * s1[i] + inc;
        s1[i] = mi;
        p[i] = w - mi;
      } else {
        p[i] = w - inc;
      }
    } else if constexpr (R == OptimizerRule::Adagrad) {
      const T ai = s0[i] + gi * gi;
      s0[i] = ai;
      p[i] = w - (k.lr * gi) / sqrt(ai + k.eps);
    } else if constexpr (R == OptimizerRule::Adadelta) {  // s0 accumulated grad, s1 accumulated delta
      const T agi = k.rho * s0[i] + k.crho * (gi * gi);
      s0[i] = agi;
      const T delta = -(sqrt(s1[i] + k.eps) * gi) / sqrt(agi + k.eps);
      s1[i] = k.rho * s1[i] + k.crho * (delta * delta);
      p[i] = w + k.lr * delta;
    } else if constexpr (R == OptimizerRule::Adamax) {  // s0 m, s1 u
      const T mi = s0[i] + (gi - s0[i]) * k.c1;
      const T ui = fmax(k.b2 * s1[i], fabs(gi));
      s0[i] = mi;
      s1[i] = ui;
      p[i] = w - (k.lr * mi) / (k.bc * (ui + k.eps));
    } else if constexpr (R == OptimizerRule::Nadam) {  // s0 m, s1 v
      const T mi = s0[i] + (gi - s0[i]) * k.c1;
      const T vi = s1[i] + (gi * gi - s1[i]) * k.c2;
      s0[i] = mi;
      s1[i] = vi;
      const T m_hat = k.nadam_a * mi + k.nadam_bg * gi;
      p[i] = w - (m_hat * k.lr) / (sqrt(vi / k.vc) + k.eps);
    } else if constexpr (R == OptimizerRule::Ftrl) {  // s0 accumulator, s1 linear; reads the decayed w
      const T na = s0[i] + gi * gi;
      const T pn = pow(na, k.np);
      const T li = s1[i] + ((gi + k.l2s2 * w) - ((pn - pow(s0[i], k.np)) / k.lr) * w);
      s1[i] = li;
      const T quad = pn / k.lr + T(2) * k.l2r;
      p[i] = (fmin(fmax(li, -k.l1), k.l1) - li) / quad;
      s0[i] = na;
    } else if constexpr (R == OptimizerRule::Lion) {  // s0 m
      const T s = s0[i] * k.b1 + gi * k.c1;
      const T sg = static_cast<T>((s > T(0)) - (s < T(0)));
      p[i] = w - k.lr * sg;
      s0[i] = s0[i] * k.b2 + gi * k.c2;
    }
  }
}

size_t slots_needed(OptimizerRule rule, const OptimizerHyper& h) {
  switch (rule) {
    case OptimizerRule::SGD: return h.momentum != 0 ? 1 : 0;
    case OptimizerRule::Adam: return h.amsgrad ? 3 : 2;
    case OptimizerRule::RMSprop: return 1 + (h.momentum > 0 ? 1 : 0) + (h.centered ? 1 : 0);
    case OptimizerRule::Adagrad: return 1;
    case OptimizerRule::Adadelta: return 2;
    case OptimizerRule::Adamax: return 2;
    case OptimizerRule::Nadam: return 2;
    case OptimizerRule::Ftrl: return 2;
    case OptimizerRule::Lion: return 1;
  }
  return 0;
}

template <typename T>
Coeffs<T> coeffs(const OptimizerHyper& h) {
  Coeffs<T> k{};
  k.scale = static_cast<T>(h.grad_scale);
  k.clip = static_cast<T>(h.clip_value);
  k.do_clip = h.clip_value > 0;
  k.decay = static_cast<T>(1.0 - h.weight_decay * h.lr);
  k.do_decay = h.weight_decay != 0;
  k.lr = static_cast<T>(h.lr);
  k.eps = static_cast<T>(h.epsilon);
  k.mom = static_cast<T>(h.momentum);
  k.nesterov = h.nesterov;
  const double t = static_cast<double>(h.step);
  k.alpha = static_cast<T>(h.lr * std::sqrt(1.0 - std::pow(h.beta_2, t)) / (1.0 - std::pow(h.beta_1, t)));
  k.c1 = static_cast<T>(1.0 - h.beta_1);
  k.c2 = static_cast<T>(1.0 - h.beta_2);
  k.b1 = static_cast<T>(h.beta_1);
  k.b2 = static_cast<T>(h.beta_2);
  k.bc = static_cast<T>(1.0 - std::pow(h.beta_1, t));  // Adamax
  const double u_t = h.beta_1 * (1.0 - 0.5 * std::pow(0.96, t));
  const double u_t1 = h.beta_1 * (1.0 - 0.5 * std::pow(0.96, t + 1));
  k.nadam_a = static_cast<T>(u_t1 / (1.0 - h.u_product * u_t1));
  k.nadam_bg = static_cast<T>((1.0 - u_t) / (1.0 - h.u_product));
  k.vc = static_cast<T>(1.0 - std::pow(h.beta_2, t));
  k.rho = static_cast<T>(h.rho);
  k.crho = static_cast<T>(1.0 - h.rho);
  k.use_mom = h.momentum > 0;
  k.centered = h.centered;
  k.l2r = static_cast<T>(h.l2 + h.ftrl_beta / (2.0 * h.lr));
  k.l2s2 = static_cast<T>(2.0 * h.l2_shrinkage);
  k.l1 = static_cast<T>(h.l1);
  k.np = static_cast<T>(-h.lr_power);
  return k;
}

template <OptimizerRule R, typename T>
void launch_rule(Tensor& param, const Tensor& grad, T* const* sl, const Coeffs<T>& k, cudaStream_t s) {
  const int64_t n = param.numel();
  update_kernel<R, T><<<grid_for(n), kThreads, 0, s>>>(dptr<T>(param), dptr<T>(grad), sl[0], sl[1], sl[2], k, n);
  RK_CUDA_CHECK_LAUNCH();
}

template <typename T>
void launch(OptimizerRule rule, Tensor& param, const Tensor& grad, std::vector<Tensor>& slots, const OptimizerHyper& h,
            cudaStream_t s) {
  const Coeffs<T> k = coeffs<T>(h);
  T* sl[3] = {nullptr, nullptr, nullptr};
  if (rule == OptimizerRule::RMSprop) {  // kernel slots: velocity, momentum, average gradient
    sl[0] = dptr<T>(slots[0]);
    if (k.use_mom) sl[1] = dptr<T>(slots[1]);
    if (k.centered) sl[2] = dptr<T>(slots[k.use_mom ? 2 : 1]);
  } else {
    for (size_t j = 0; j < slots_needed(rule, h); ++j) sl[j] = dptr<T>(slots[j]);
  }
  switch (rule) {
    case OptimizerRule::SGD: return launch_rule<OptimizerRule::SGD, T>(param, grad, sl, k, s);
    case OptimizerRule::Adam: return launch_rule<OptimizerRule::Adam, T>(param, grad, sl, k, s);
    case OptimizerRule::RMSprop: return launch_rule<OptimizerRule::RMSprop, T>(param, grad, sl, k, s);
    case OptimizerRule::Adagrad: return launch_rule<OptimizerRule::Adagrad, T>(param, grad, sl, k, s);
    case OptimizerRule::Adadelta: return launch_rule<OptimizerRule::Adadelta, T>(param, grad, sl, k, s);
    case OptimizerRule::Adamax: return launch_rule<OptimizerRule::Adamax, T>(param, grad, sl, k, s);
    case OptimizerRule::Nadam: return launch_rule<OptimizerRule::Nadam, T>(param, grad, sl, k, s);
    case OptimizerRule::Ftrl: return launch_rule<OptimizerRule::Ftrl, T>(param, grad, sl, k, s);
    case OptimizerRule::Lion: return launch_rule<OptimizerRule::Lion, T>(param, grad, sl, k, s);
  }
  throw UnsupportedError("optimizer_update: unknown rule " + std::to_string(static_cast<int>(rule)));
}

}  // namespace

void CudaBackend::optimizer_update(OptimizerRule rule, Tensor& param, const Tensor& grad, std::vector<Tensor>& slots,
                                   const OptimizerHyper& h) {
  const size_t need = slots_needed(rule, h);
  if (slots.size() < need)
    throw ValueError("optimizer_update: the rule needs " + std::to_string(need) + " slots, got " +
                     std::to_string(slots.size()));
  if (grad.numel() != param.numel() || grad.dtype() != param.dtype())
    throw ShapeError("optimizer_update: gradient " + grad.str() + " does not match parameter " + param.str());
  for (size_t k = 0; k < need; ++k)
    if (slots[k].numel() != param.numel() || slots[k].dtype() != param.dtype())
      throw ShapeError("optimizer_update: slot " + slots[k].str() + " does not match parameter " + param.str());
  if (param.numel() == 0) return;
  cudaStream_t s = ctx().stream();
  switch (param.dtype()) {
    case DType::Float32: return launch<float>(rule, param, grad, slots, h, s);
    case DType::Float64: return launch<double>(rule, param, grad, slots, h, s);
    default: throw_dtype_error("optimizer_update", param.dtype(), "float32 or float64");
  }
}

}  // namespace rk::cuda
