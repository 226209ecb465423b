// Device-independent ops: check shapes and dtypes, allocate outputs, call the backend,
// and record the backward on the autograd tape. Axes are 0-based; negative axes count
// from the end. Binary ops promote dtypes (bool < int32 < float32 < float64) and broadcast.
// Every op that takes floating input and is differentiable records its backward when
// autograd::needs_grad() says so. Forward and backward of an op live in the same file.
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/autograd.h"
#include "backend/backend.h"
#include "core/tensor.h"

namespace rk::ops {

// ---- creation (ops/creation.cpp) ---------------------------------------------------------
/// Tensor of `shape` filled with `value`.
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32, Device device = cpu_device());
/// Zeros of `shape`.
Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = cpu_device());
/// Ones of `shape`.
Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = cpu_device());
/// Zeros with t's shape, dtype and device.
Tensor zeros_like(const Tensor& t);
/// Ones with t's shape, dtype and device.
Tensor ones_like(const Tensor& t);
/// A rank-0 tensor holding `value`.
Tensor scalar(double value, DType dtype = DType::Float32, Device device = cpu_device());
/// A new tensor with the same values (recorded: gradient passes through).
Tensor clone(const Tensor& x);
/// x converted to `dtype` (recorded between floating types; int/bool results carry no grad).
Tensor cast(const Tensor& x, DType dtype);
/// x copied to `device` (x itself when already there); recorded: the gradient is copied back.
Tensor to_device(const Tensor& x, Device device);
/// Uniform U[lo, hi) from the default generator.
Tensor random_uniform(const Shape& shape, double lo, double hi, DType dtype = DType::Float32);
/// Normal N(mean, stddev^2) from the default generator.
Tensor random_normal(const Shape& shape, double mean, double stddev, DType dtype = DType::Float32);

// ---- elementwise (ops/elementwise.cpp) -------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor subtract(const Tensor& a, const Tensor& b);
Tensor multiply(const Tensor& a, const Tensor& b);
Tensor divide(const Tensor& a, const Tensor& b);
/// a ** b elementwise (gradient w.r.t. b uses log(a), defined for a > 0).
Tensor power(const Tensor& a, const Tensor& b);
/// Elementwise max; on ties the gradient goes to `a`.
Tensor maximum(const Tensor& a, const Tensor& b);
/// Elementwise min; on ties the gradient goes to `a`.
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor negative(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor square(const Tensor& x);
Tensor abs(const Tensor& x);
/// -1, 0 or 1 (gradient zero).
Tensor sign(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor elu(const Tensor& x, double alpha = 1.0);
Tensor selu(const Tensor& x);
Tensor softplus(const Tensor& x);
Tensor softsign(const Tensor& x);
/// GELU: exact (erf) form, or the tanh approximation if `approximate`.
Tensor gelu(const Tensor& x, bool approximate = false);
/// x * sigmoid(x) (a.k.a. swish).
Tensor silu(const Tensor& x);
Tensor mish(const Tensor& x);
/// x if x >= 0 else negative_slope * x.
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.2);
/// clip(slope * x + offset, 0, 1); Keras 3 uses slope 1/6, offset 0.5 (Keras 2 / tfjs: 0.2, 0.5).
Tensor hard_sigmoid(const Tensor& x, double slope = 1.0 / 6.0, double offset = 0.5);
Tensor erf(const Tensor& x);
/// min(max(x, lo), hi); gradient 1 inside [lo, hi], 0 outside.
Tensor clip(const Tensor& x, double lo, double hi);
/// Comparisons: Bool results, no gradient.
Tensor equal(const Tensor& a, const Tensor& b);
Tensor not_equal(const Tensor& a, const Tensor& b);
Tensor less(const Tensor& a, const Tensor& b);
Tensor less_equal(const Tensor& a, const Tensor& b);
Tensor greater(const Tensor& a, const Tensor& b);
Tensor greater_equal(const Tensor& a, const Tensor& b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& x);
/// cond ? a : b with broadcasting; gradient flows to the chosen side.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
/// Inverted dropout: zeroes each element with probability `rate` and scales the rest by 1/(1-rate).
/// `noise_shape` (empty = x's shape) broadcasts the mask. Identity when rate == 0.
Tensor dropout(const Tensor& x, double rate, const Shape& noise_shape = Shape());
/// Sums `g` down to `shape` over the axes that broadcasting expanded (the adjoint of broadcast_to).
Tensor sum_to(const Tensor& g, const Shape& shape);
/// x broadcast to `shape` (recorded; backward is sum_to).
Tensor broadcast_to(const Tensor& x, const Shape& shape);

// ---- reductions (ops/reduce.cpp) --------------------------------------------------------
/// Reductions over `axes` (empty = all axes).
Tensor sum(const Tensor& x, const std::vector<int>& axes = {}, bool keepdims = false);
Tensor mean(const Tensor& x, const std::vector<int>& axes = {}, bool keepdims = false);
/// Max/min: the gradient is split evenly among tied maxima.
Tensor max(const Tensor& x, const std::vector<int>& axes = {}, bool keepdims = false);
Tensor min(const Tensor& x, const std::vector<int>& axes = {}, bool keepdims = false);
Tensor prod(const Tensor& x, const std::vector<int>& axes = {}, bool keepdims = false);
Tensor logsumexp(const Tensor& x, const std::vector<int>& axes = {}, bool keepdims = false);
/// int32 index of the max/min along `axis` (first occurrence); no gradient.
Tensor argmax(const Tensor& x, int axis, bool keepdims = false);
Tensor argmin(const Tensor& x, int axis, bool keepdims = false);

// ---- softmax and losses (ops/softmax.cpp, ops/loss.cpp) ----------------------------------
Tensor softmax(const Tensor& x, int axis = -1);
Tensor log_softmax(const Tensor& x, int axis = -1);
/// Per-sample categorical cross-entropy over the last axis (shape: target's without the last axis).
/// from_logits: fused log-softmax form; else `output` are probabilities, rescaled to sum 1 and
/// clipped to [epsilon, 1 - epsilon] as Keras does. Gradient w.r.t. `output` only.
Tensor categorical_crossentropy(const Tensor& target, const Tensor& output, bool from_logits,
                                double epsilon = 1e-7);
/// Per-sample sparse categorical cross-entropy; `target` holds class indices (int32 or integral floats)
/// of output's shape without the last axis; out-of-range labels throw IndexError naming the label.
Tensor sparse_categorical_crossentropy(const Tensor& target, const Tensor& output, bool from_logits,
                                       double epsilon = 1e-7);
/// Elementwise binary cross-entropy (the caller averages over the last axis as Keras does);
/// from_logits: the fused stable sigmoid form; else probabilities clipped to [epsilon, 1 - epsilon].
Tensor binary_crossentropy(const Tensor& target, const Tensor& output, bool from_logits, double epsilon = 1e-7);

// ---- linear algebra (ops/linalg.cpp) ----------------------------------------------------
/// NumPy matmul: 1-D operands are promoted and squeezed, leading (batch) dims broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- shape and indexing (ops/shape.cpp, ops/index.cpp) -----------------------------------
/// Same data with a new shape; one extent may be -1 (inferred). Free view (no copy).
Tensor reshape(const Tensor& x, const std::vector<int64_t>& shape);
/// Permutes axes (empty `perm` reverses them).
Tensor transpose(const Tensor& x, const std::vector<int>& perm = {});
/// Inserts a size-1 axis at `axis` (in the output's numbering).
Tensor expand_dims(const Tensor& x, int axis);
/// Removes the given size-1 axes (all size-1 axes if empty); ShapeError if one is not 1.
Tensor squeeze(const Tensor& x, const std::vector<int>& axes = {});
/// Joins tensors along an existing axis.
Tensor concatenate(const std::vector<Tensor>& xs, int axis);
/// Joins equal-shape tensors along a new axis.
Tensor stack(const std::vector<Tensor>& xs, int axis);
/// Splits along `axis` at the given sizes (which must sum to the extent).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int axis);
/// The box [start, start + size) per axis (size -1 = to the end).
Tensor slice(const Tensor& x, const std::vector<int64_t>& start, const std::vector<int64_t>& size);
/// Elements along `axis` at int32 `indices` (NumPy take; negative indices count from the end).
Tensor take(const Tensor& x, const Tensor& indices, int axis);
/// One-hot encoding of int32 class indices into `depth` classes (float32 by default).
Tensor one_hot(const Tensor& indices, int64_t depth, DType dtype = DType::Float32);

// ---- convolution, pooling, padding, images (ops/conv.cpp, ops/pool.cpp, ops/image.cpp) -----
/// Channels-last convolution: x [N, *in, Cin] (1-3 spatial axes), kernel [*window, Cin/groups, Cout],
/// bias [Cout] or undefined, explicit padding in p; relu fused when `relu`. Output [N, *out, Cout]
/// (extents as WindowGeometry says). ShapeError names the shapes when they do not fit.
Tensor conv(const Tensor& x, const Tensor& kernel, const Tensor& bias, const ConvParams& p, bool relu = false);
/// Transposed convolution, the adjoint of conv w.r.t. its input: x [N, *in, Cin] with kernel
/// [*window, Cout, Cin] (Keras's Conv*DTranspose layout), bias [Cout] or undefined. `p` describes the
/// forward conv that maps the output [N, *out_spatial, Cout] to x's spatial extents.
Tensor conv_transpose(const Tensor& x, const Tensor& kernel, const Tensor& bias, const ConvParams& p,
                      const std::vector<int64_t>& out_spatial);
/// Max pooling of channels-last x [N, *in, C] (padding never wins).
Tensor max_pool(const Tensor& x, const WindowGeometry& p);
/// Average pooling of channels-last x [N, *in, C] (padding not counted, as TF).
Tensor avg_pool(const Tensor& x, const WindowGeometry& p);
/// x padded with `value`: before[i]/after[i] elements on axis i (one entry per axis; >= 0).
Tensor pad(const Tensor& x, const std::vector<int64_t>& before, const std::vector<int64_t>& after, double value = 0);
/// images [N, H, W, C] resampled through projective transforms [N, 8] to [N, out_h, out_w, C]
/// (no gradient: preprocessing only).
Tensor image_transform(const Tensor& images, const Tensor& transforms, int64_t out_h, int64_t out_w,
                       Interpolation interp, FillMode fill, double fill_value = 0);

// ---- batch normalization (ops/norm.cpp) -----------------------------------------------------
/// Output of batch_norm_training: y (x's shape; gradients to x, gamma, beta) and the batch's
/// per-channel mean and biased variance [C] (no gradient: they feed Keras's moving statistics).
struct BatchNormResult {
  Tensor y, mean, var;
};
/// Batch normalization with batch statistics over every axis but `axis` (the C channels):
/// y = (x - mean) / sqrt(var + eps) * gamma + beta. gamma, beta: C values or undefined (1, 0).
BatchNormResult batch_norm_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, int axis, double eps);
/// Batch normalization with given statistics (mean, var: C values, treated as constants), as above.
Tensor batch_norm_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                            const Tensor& var, int axis, double eps);

// ---- connectionist temporal classification (ops/ctc.cpp) ---------------------------------
/// Per-sample CTC loss [B] (negative log-likelihood) of `target` [B, L] (class ids, int32 or integral
/// floats) under `output` [B, T, C] logits (log-softmaxed here), as Keras 3's ops.ctc_loss: the label
/// of sample b is target[b, :target_length[b]], frames beyond output_length[b] are ignored (either
/// length undefined = full), `mask_index` is the blank. Impossible alignments give +Inf (zero gradient).
/// Gradient w.r.t. `output` only (CPU).
Tensor ctc_loss(const Tensor& target, const Tensor& output, const Tensor& target_length = Tensor(),
                const Tensor& output_length = Tensor(), int64_t mask_index = 0);

}  // namespace rk::ops
