// Fused batch normalization (forward + backward through the tape). x of any rank is viewed as
// [outer, C, inner] around the channel axis (a free view of contiguous data), which is the layout
// every backend kernel takes; an absent gamma/beta is a ones/zeros vector that gets no gradient.
#include <string>

#include "ops/ops.h"

namespace rk::ops {
namespace {

// [outer, C, inner] of x around axis `ax`.
Shape view3(const Shape& s, int ax) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < ax; ++i) outer *= s[i];
  for (int i = ax + 1; i < s.rank(); ++i) inner *= s[i];
  return Shape({outer, s[ax], inner});
}

// Checks and prepares one per-channel operand: [C] (any rank with C elements), on x's device,
// cast to x's dtype (the cast is recorded, so a gradient reaches the original).
Tensor per_channel(const char* op, const char* what, const Tensor& t, const Tensor& x, int64_t c) {
  if (!is_floating(t.dtype())) throw_dtype_error(op, t.dtype(), "float32 or float64");
  if (t.numel() != c)
    throw ShapeError(std::string(op) + ": " + what + " " + t.shape().str() + " must hold one value per channel (" +
                     std::to_string(c) + ") of input " + x.shape().str());
  if (t.device() != x.device()) throw ValueError(std::string(op) + ": " + what + " is on another device than the input");
  return t.dtype() == x.dtype() ? t : cast(t, x.dtype());
}

struct Prepared {
  int ax = 0;
  Shape s3;
  Tensor gamma, beta;       // as given (cast), undefined if absent: what gradients flow to
  Tensor gamma_v, beta_v;   // [C] values the kernels read (ones / zeros if absent)
};

Prepared prepare(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta, int axis, double eps) {
  if (!x.defined()) throw ValueError(std::string(op) + ": input is undefined");
  if (!is_floating(x.dtype())) throw_dtype_error(op, x.dtype(), "float32 or float64");
  if (!(eps >= 0)) throw ValueError(std::string(op) + ": epsilon must be a non-negative number, got " + std::to_string(eps));
  Prepared p;
  p.ax = normalize_axis(axis, x.rank(), op);
  p.s3 = view3(x.shape(), p.ax);
  const int64_t c = p.s3[1];
  const Shape cs({c});
  if (gamma.defined()) p.gamma = per_channel(op, "gamma", gamma, x, c);
  if (beta.defined()) p.beta = per_channel(op, "beta", beta, x, c);
  p.gamma_v = p.gamma.defined() ? p.gamma.detach().view_as_shape(cs) : ones(cs, x.dtype(), x.device());
  p.beta_v = p.beta.defined() ? p.beta.detach().view_as_shape(cs) : zeros(cs, x.dtype(), x.device());
  return p;
}

// Inputs of the recorded node: x, then gamma and beta when given.
std::vector<Tensor> tape_inputs(const Tensor& x, const Prepared& p) {
  std::vector<Tensor> in{x};
  if (p.gamma.defined()) in.push_back(p.gamma);
  if (p.beta.defined()) in.push_back(p.beta);
  return in;
}

// Which gradients a batch-norm node must produce, and the shapes of the inputs they go back to.
struct GradPlan {
  bool need_x = false, has_g = false, has_b = false, need_g = false, need_b = false;
  Shape xs, s3, gs, bs;  // x, its [outer, C, inner] view, gamma, beta ([C] when absent)

  // Gradients in tape_inputs order from the [outer, C, inner] gx and the [C] ggamma, gbeta,
  // reshaped to the shapes of the inputs.
  std::vector<Tensor> in_tape_order(const Tensor& gx, const Tensor& ggamma, const Tensor& gbeta) const {
    std::vector<Tensor> g{gx.defined() ? gx.view_as_shape(xs) : Tensor()};
    if (has_g) g.push_back(ggamma.defined() ? ggamma.view_as_shape(gs) : Tensor());
    if (has_b) g.push_back(gbeta.defined() ? gbeta.view_as_shape(bs) : Tensor());
    return g;
  }
};

GradPlan grad_plan(const Tensor& x, const Prepared& p) {
  const Shape cs({p.s3[1]});
  GradPlan g;
  g.need_x = x.requires_grad();
  g.has_g = p.gamma.defined();
  g.has_b = p.beta.defined();
  g.need_g = g.has_g && p.gamma.requires_grad();
  g.need_b = g.has_b && p.beta.requires_grad();
  g.xs = x.shape();
  g.s3 = p.s3;
  g.gs = g.has_g ? p.gamma.shape() : cs;
  g.bs = g.has_b ? p.beta.shape() : cs;
  return g;
}

}  // namespace

BatchNormResult batch_norm_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, int axis, double eps) {
  const char* op = "batch_norm";
  const Prepared p = prepare(op, x, gamma, beta, axis, eps);
  const Shape cs({p.s3[1]});
  const Tensor x3 = x.detach().view_as_shape(p.s3);
  Tensor y3 = Tensor::empty(p.s3, x.dtype(), x.device());
  Tensor mean = Tensor::empty(cs, x.dtype(), x.device()), var = Tensor::empty(cs, x.dtype(), x.device());
  Tensor invstd = Tensor::empty(cs, x.dtype(), x.device());
  backend_of(x).batch_norm_forward_training(x3, p.gamma_v, p.beta_v, eps, y3, mean, var, invstd);
  Tensor y = y3.view_as_shape(x.shape());

  const std::vector<Tensor> inputs = tape_inputs(x, p);
  if (autograd::needs_grad(inputs)) {
    const GradPlan plan = grad_plan(x, p);
    const Tensor gamma_v = p.gamma_v, md = mean, id = invstd;
    autograd::record(op, y, inputs, [=](const Tensor& g) {
      Tensor gx = plan.need_x ? Tensor::empty(plan.s3, g.dtype(), g.device()) : Tensor();
      Tensor gg = plan.need_g ? Tensor::empty(cs, g.dtype(), g.device()) : Tensor();
      Tensor gb = plan.need_b ? Tensor::empty(cs, g.dtype(), g.device()) : Tensor();
      backend_of(g).batch_norm_backward(x3, g.view_as_shape(plan.s3), gamma_v, md, id, eps, gx, gg, gb);
      return plan.in_tape_order(gx, gg, gb);
    });
  }
  return {y, mean, var};
}

Tensor batch_norm_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                            const Tensor& var, int axis, double eps) {
  const char* op = "batch_norm";
  const Prepared p = prepare(op, x, gamma, beta, axis, eps);
  const int64_t c = p.s3[1];
  const Shape cs({c});
  if (!mean.defined() || !var.defined()) throw ValueError(std::string(op) + ": inference needs a mean and a variance");
  const Tensor mv = per_channel(op, "mean", mean, x, c).detach().view_as_shape(cs);
  const Tensor vv = per_channel(op, "variance", var, x, c).detach().view_as_shape(cs);
  const Tensor x3 = x.detach().view_as_shape(p.s3);
  Tensor y3 = Tensor::empty(p.s3, x.dtype(), x.device());
  backend_of(x).batch_norm_forward_inference(x3, p.gamma_v, p.beta_v, mv, vv, eps, y3);
  Tensor y = y3.view_as_shape(x.shape());

  const std::vector<Tensor> inputs = tape_inputs(x, p);
  if (autograd::needs_grad(inputs)) {
    // The statistics are constants here, so y is affine in x, gamma and beta:
    // gx = gy * gamma * s, ggamma = sum(gy * (x - mean) * s), gbeta = sum(gy), s = 1 / sqrt(var + eps).
    const GradPlan plan = grad_plan(x, p);
    const Shape b3({1, c, 1});
    const Tensor gamma_v = p.gamma_v;
    const Tensor xd = plan.need_g ? x3 : Tensor();
    autograd::record(op, y, inputs, [=](const Tensor& g) {
      const Tensor g3 = g.view_as_shape(plan.s3);
      const Tensor s = reciprocal(sqrt(add(vv, scalar(eps, vv.dtype(), vv.device()))));
      Tensor gx, gg, gb;
      if (plan.need_x) gx = multiply(g3, multiply(gamma_v, s).view_as_shape(b3));
      if (plan.need_g)
        gg = sum(multiply(g3, multiply(subtract(xd, mv.view_as_shape(b3)), s.view_as_shape(b3))), {0, 2});
      if (plan.need_b) gb = sum(g3, {0, 2});
      return plan.in_tape_order(gx, gg, gb);
    });
  }
  return y;
}

}  // namespace rk::ops
