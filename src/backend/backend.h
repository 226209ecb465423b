// The device interface: coarse kernels that write into outputs the ops layer allocated.
// Shapes and dtypes are already checked by the ops layer; a backend only computes.
// The CPU backend is the reference implementation and the oracle for the CUDA one.
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace rk {

/// Elementwise functions of one tensor. Parameters come in UnaryParams (a, b).
enum class UnaryOp {
  Neg, Exp, Log, Log1p, Sqrt, Square, Abs, Sign, Reciprocal,
  Tanh, Sigmoid, Relu, Relu6, Elu /*a=alpha*/, Selu, Softplus, Softsign,
  Gelu /*exact, erf*/, GeluTanh, Silu, Mish, LeakyRelu /*a=negative slope*/,
  HardSigmoid /*clip(a*x + b, 0, 1)*/, Erf, Clip /*clip(x, a, b)*/, LogicalNot
};

/// Scalar parameters of a UnaryOp; unused ones are ignored.
struct UnaryParams {
  double a = 0;
  double b = 0;
};

/// Elementwise functions of two broadcast tensors. Comparisons and logical ops write Bool.
enum class BinaryOp {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum,
  Equal, NotEqual, Less, LessEqual, Greater, GreaterEqual, LogicalAnd, LogicalOr
};

/// Reductions over a set of axes.
enum class ReduceOp { Sum, Mean, Max, Min, Prod, LogSumExp };

/// Index-returning reductions over one axis (output int32).
enum class ArgReduceOp { ArgMax, ArgMin };

/// Optimizer update rules a backend fuses into one pass over a parameter (Keras 3 formulas).
enum class OptimizerRule { SGD, Adam, RMSprop, Adagrad, Adadelta, Adamax, Nadam, Ftrl, Lion };

/// Hyper-parameters of a fused optimizer update. Before the rule, the kernel replaces the gradient
/// by clip(grad * grad_scale, -clip_value, clip_value) (clip only if clip_value > 0) and applies
/// decoupled weight decay param -= param * weight_decay * lr (if weight_decay != 0).
struct OptimizerHyper {
  double lr = 0.01;
  double momentum = 0;       ///< SGD, RMSprop (0 = no momentum slot)
  bool nesterov = false;     ///< SGD
  double beta_1 = 0.9;       ///< Adam, Adamax, Nadam, Lion
  double beta_2 = 0.999;     ///< Adam, Adamax, Nadam, Lion
  bool amsgrad = false;      ///< Adam
  double rho = 0.9;          ///< RMSprop, Adadelta
  bool centered = false;     ///< RMSprop
  double epsilon = 1e-7;     ///< Adam, RMSprop, Adagrad, Adadelta, Adamax, Nadam
  int64_t step = 1;          ///< 1-based update count (bias corrections)
  double u_product = 1;      ///< Nadam: prod_{s<=step} beta_1 (1 - 0.5 * 0.96^s) (Keras's _u_product after this step)
  double lr_power = -0.5;    ///< Ftrl learning_rate_power
  double l1 = 0;             ///< Ftrl l1_regularization_strength
  double l2 = 0;             ///< Ftrl l2_regularization_strength
  double l2_shrinkage = 0;   ///< Ftrl l2_shrinkage_regularization_strength
  double ftrl_beta = 0;      ///< Ftrl beta
  double grad_scale = 1;     ///< gradient multiplier (clipnorm / global_clipnorm)
  double clip_value = 0;     ///< > 0: clip the gradient elementwise to [-clip_value, clip_value]
  double weight_decay = 0;   ///< decoupled weight decay rate
};

/// Geometry of a sliding window over channels-last data [N, *spatial, C] with 1 to 3 spatial axes:
/// one entry per spatial axis in every vector. Output extent per axis:
/// floor((in + pad_before + pad_after - dilation * (window - 1) - 1) / stride) + 1.
struct WindowGeometry {
  std::vector<int64_t> window;      ///< kernel or pool extent
  std::vector<int64_t> stride;
  std::vector<int64_t> dilation;    ///< 1 for pooling
  std::vector<int64_t> pad_before;  ///< implicit padding before the first element (zeros for conv)
  std::vector<int64_t> pad_after;   ///< implicit padding after the last element (TF "same" puts the odd one here)
  /// Number of spatial axes.
  int spatial_rank() const { return static_cast<int>(window.size()); }
};

/// A convolution: the window geometry plus channel groups (Cin and Cout both divisible by groups;
/// group g reads input channels [g*Cin/G, (g+1)*Cin/G) and writes output channels [g*Cout/G, (g+1)*Cout/G)).
struct ConvParams : WindowGeometry {
  int64_t groups = 1;
};

/// Pooling reductions.
enum class PoolMode { Max, Avg };

/// Resampling of image transforms.
enum class Interpolation { Nearest, Bilinear };
/// Values for points sampled outside the image (Keras's fill_mode).
enum class FillMode { Reflect, Wrap, Constant, Nearest };

/// Abstract device backend. Every method writes a pre-allocated, contiguous output.
class Backend {
 public:
  virtual ~Backend() = default;
  /// The device this backend computes on.
  virtual Device device() const = 0;

  // --- memory and conversion -------------------------------------------------
  /// dst = src converted to dst's dtype; same numel (shapes may differ).
  virtual void copy(const Tensor& src, Tensor& dst) = 0;
  /// Sets every element of dst to `value` (converted to dst's dtype).
  virtual void fill(Tensor& dst, double value) = 0;
  /// dst (shape S) = src broadcast from its own shape to S (NumPy rules).
  virtual void broadcast_to(const Tensor& src, Tensor& dst) = 0;

  // --- elementwise -------------------------------------------------------------
  /// y = op(x); y has x's shape and dtype (float ops) or Bool (LogicalNot on Bool input).
  virtual void unary(UnaryOp op, const Tensor& x, Tensor& y, const UnaryParams& p) = 0;
  /// gx = gy * op'(x) (x: input, y: forward output, both available); all same shape, floating.
  virtual void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                              const UnaryParams& p) = 0;
  /// out = a op b with NumPy broadcasting; a and b share a dtype; out has the broadcast shape.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) = 0;
  /// out = cond ? a : b with three-way broadcasting; cond is Bool, a/b/out share a dtype.
  virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) = 0;

  // --- reductions ----------------------------------------------------------------
  /// out = reduce x over `axes` (sorted, normalised, non-empty); out.numel() == product of kept extents.
  virtual void reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes, Tensor& out) = 0;
  /// out (int32) = index of the max/min along `axis`; first occurrence wins; NaN counts as max.
  virtual void arg_reduce(ArgReduceOp op, const Tensor& x, int axis, Tensor& out) = 0;

  // --- linear algebra --------------------------------------------------------------
  /// c[i] = alpha * op(a[i]) op(b[i]) + beta * c[i] for i < batch; op(a[i]) is [m,k], op(b[i]) is [k,n];
  /// operands are contiguous row-major matrices, item i starts at i*stride (stride 0 broadcasts).
  virtual void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, double alpha,
                    const Tensor& a, int64_t stride_a, const Tensor& b, int64_t stride_b, double beta, Tensor& c,
                    int64_t stride_c) = 0;

  // --- convolution and pooling (channels-last) ---------------------------------------------
  /// y [N, *out, Cout] = cross-correlation of x [N, *in, Cin] with w [*window, Cin/groups, Cout]
  /// (Keras's kernel layout), zero-padded as p says, plus bias [Cout] when bias.defined(), then
  /// max(., 0) when `relu`. x, w, bias and y share a floating dtype.
  virtual void conv_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const ConvParams& p,
                            bool relu) = 0;
  /// gx [N, *in, Cin] (overwritten) = the gradient of conv_forward (no bias, no relu) w.r.t. x for upstream gy.
  virtual void conv_backward_data(const Tensor& gy, const Tensor& w, Tensor& gx, const ConvParams& p) = 0;
  /// gw [*window, Cin/groups, Cout] (overwritten) = the gradient of conv_forward w.r.t. w for upstream gy.
  virtual void conv_backward_filter(const Tensor& x, const Tensor& gy, Tensor& gw, const ConvParams& p) = 0;
  /// Every requested gradient of conv_forward(x, w, bias, y, p, relu) for upstream gy, in one call:
  /// with gm = relu ? gy * (y > 0) : gy, gx = backward-data of gm, gw = backward-filter of gm and
  /// gbias [Cout] = gm summed over all axes but the last. Undefined gx/gw/gbias are not computed; x is
  /// read only for gw, w only for gx, y only when relu. The default composes the methods above; a
  /// backend may fuse the mask and the bias sum into one pass over gy.
  virtual void conv_backward(const Tensor& x, const Tensor& w, const Tensor& y, const Tensor& gy, Tensor& gx,
                             Tensor& gw, Tensor& gbias, const ConvParams& p, bool relu);
  /// y [N, *out, C] = max or mean of x [N, *in, C] over each window. Padded positions never count:
  /// Max ignores them, Avg divides by the number of real elements in the window (TF semantics).
  virtual void pool_forward(PoolMode mode, const Tensor& x, Tensor& y, const WindowGeometry& p) = 0;
  /// gx (overwritten) from gy; Max sends each window's gradient to the first maximum in it (x, y as in
  /// the forward), Avg spreads it evenly over the window's real elements; overlapping windows add.
  virtual void pool_backward(PoolMode mode, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                             const WindowGeometry& p) = 0;
  /// out [N, H', W', C] = images [N, H, W, C] sampled through per-image projective transforms
  /// (float32 [N, 8]: a0 a1 a2 b0 b1 b2 c0 c1 map output (x, y) to input ((a0 x + a1 y + a2) / k,
  /// (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1, as tf.raw_ops.ImageProjectiveTransformV3).
  virtual void image_transform(const Tensor& images, const Tensor& transforms, Tensor& out, Interpolation interp,
                               FillMode fill, double fill_value) = 0;

  // --- softmax family ----------------------------------------------------------------
  /// y = softmax(x) (or log_softmax if `log`) along `axis`.
  virtual void softmax(const Tensor& x, Tensor& y, int axis, bool log) = 0;
  /// gx from the forward output y and upstream gy along `axis`.
  virtual void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, int axis, bool log) = 0;

  // --- batch normalization ---------------------------------------------------------------
  // x is a contiguous tensor viewed as [outer, C, inner] (channels-last: [N*H*W, C, 1]; channels-first:
  // [N, C, H*W]); statistics are per channel over the outer and inner axes (m = outer * inner values).
  // gamma, beta, mean, var, invstd are [C] in x's dtype; y, gy, gx have x's shape.
  /// Training mode: mean = batch mean, var = biased batch variance, invstd = 1 / sqrt(var + eps),
  /// y = (x - mean) * invstd * gamma + beta. eps >= 0.
  virtual void batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                                           Tensor& y, Tensor& mean, Tensor& var, Tensor& invstd) = 0;
  /// Inference mode: y = (x - mean) / sqrt(var + eps) * gamma + beta with the given (moving) statistics.
  virtual void batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                            const Tensor& mean, const Tensor& var, double eps, Tensor& y) = 0;
  /// Gradients of the training-mode forward for upstream gy, from the saved mean and invstd:
  /// gbeta = sum(gy), ggamma = sum(gy * xhat), gx = gamma * invstd * (gy - (gbeta + xhat * ggamma) / m),
  /// xhat = (x - mean) * invstd. Undefined outputs are not wanted (a backend may compute them into scratch).
  virtual void batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& gamma, const Tensor& mean,
                                   const Tensor& invstd, double eps, Tensor& gx, Tensor& ggamma, Tensor& gbeta) = 0;

  // --- data movement -------------------------------------------------------------------
  /// out = x with axes permuted: out.shape[i] = x.shape[perm[i]].
  virtual void permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) = 0;
  /// Copies the box `extent` starting at `src_start` in src to `dst_start` in dst (same rank, dtype).
  /// If `accumulate`, adds into dst instead of overwriting.
  virtual void copy_region(const Tensor& src, const std::vector<int64_t>& src_start, Tensor& dst,
                           const std::vector<int64_t>& dst_start, const std::vector<int64_t>& extent,
                           bool accumulate) = 0;
  /// out = x indexed along `axis` by int32 `idx`: out.shape = x[:axis] + idx.shape + x[axis+1:].
  /// Throws IndexError for an index outside [0, x.shape[axis]).
  virtual void gather(const Tensor& x, const Tensor& idx, int axis, Tensor& out) = 0;
  /// gx[..., idx[j], ...] += g[..., j, ...] (the adjoint of gather); gx must be pre-filled.
  virtual void scatter_add(const Tensor& g, const Tensor& idx, int axis, Tensor& gx) = 0;
  /// out[..., c] = (idx[...] == c) for c < depth; out has idx.shape + (depth,); out-of-range rows are all 0.
  virtual void one_hot(const Tensor& idx, Tensor& out) = 0;

  // --- random ----------------------------------------------------------------------------
  /// dst ~ U[lo, hi) drawn from gen (consumes counters, advancing gen).
  virtual void random_uniform(Tensor& dst, double lo, double hi, Generator& gen) = 0;
  /// dst ~ N(mean, stddev^2) drawn from gen.
  virtual void random_normal(Tensor& dst, double mean, double stddev, Generator& gen) = 0;
  /// dst = (u >= rate ? scale : 0) per element, u ~ U[0,1) from gen: an inverted-dropout mask.
  virtual void dropout_mask(Tensor& dst, double rate, double scale, Generator& gen) = 0;

  // --- fused losses (per-sample values; reduction and weighting happen in the ops layer) --------
  /// loss[n] = -sum_c target[n,c] * log_softmax(logits)[n,c]; also writes probs = softmax(logits).
  /// logits/target/probs are [N, C] (C = last axis), loss is [N].
  virtual void softmax_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& loss, Tensor& probs) = 0;
  /// loss[n] = -log_softmax(logits)[n, labels[n]]; labels int32 [N] (range checked, IndexError); probs as above.
  virtual void sparse_softmax_cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& loss,
                                            Tensor& probs) = 0;
  /// glogits[n,c] = gloss[n] * (probs[n,c] - onehot(labels[n])[c]).
  virtual void sparse_softmax_cross_entropy_backward(const Tensor& probs, const Tensor& labels,
                                                     const Tensor& gloss, Tensor& glogits) = 0;
  /// out = max(x,0) - x*t + log1p(exp(-|x|)) elementwise (numerically stable sigmoid + BCE).
  virtual void sigmoid_binary_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& out) = 0;

  // --- optimizer ----------------------------------------------------------------------------------
  /// Updates `param` in place by `rule` with gradient `grad` (same shape and dtype, floating) and the
  /// rule's slots (each param-shaped), in Keras 3's slot order:
  /// SGD [momentum if h.momentum != 0]; Adam [m, v, vhat if amsgrad];
  /// RMSprop [velocity, momentum if h.momentum > 0, average_gradient if centered]; Adagrad [accumulator];
  /// Adadelta [accumulated_grad, accumulated_delta_var]; Adamax [m, u]; Nadam [m, v]; Ftrl [accumulator,
  /// linear]; Lion [m]. Rules that read the parameter (Ftrl) see it after the weight decay.
  virtual void optimizer_update(OptimizerRule rule, Tensor& param, const Tensor& grad, std::vector<Tensor>& slots,
                                const OptimizerHyper& h) = 0;
};

inline void Backend::conv_backward(const Tensor& x, const Tensor& w, const Tensor& y, const Tensor& gy, Tensor& gx,
                                   Tensor& gw, Tensor& gbias, const ConvParams& p, bool relu) {
  Tensor gm = gy;
  if (relu) {
    gm = Tensor::empty(gy.shape(), gy.dtype(), gy.device());
    unary_backward(UnaryOp::Relu, y, y, gy, gm, UnaryParams{});
  }
  if (gx.defined()) conv_backward_data(gm, w, gx, p);
  if (gw.defined()) conv_backward_filter(x, gm, gw, p);
  if (gbias.defined()) {
    std::vector<int> axes(static_cast<size_t>(gm.rank() - 1));
    for (size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<int>(i);
    reduce(ReduceOp::Sum, gm, axes, gbias);
  }
}

/// The backend serving `device`; throws UnsupportedError if this build has none for it.
Backend& backend_for(Device device);
/// The backend of the device `t` lives on.
inline Backend& backend_of(const Tensor& t) { return backend_for(t.device()); }

/// Number of CPU threads kernels use (one OpenMP pool for everything).
int num_threads();
/// Sets the CPU thread count (>= 1); throws ValueError otherwise.
void set_num_threads(int n);

}  // namespace rk
