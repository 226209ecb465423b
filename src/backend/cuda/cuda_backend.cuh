// CUDA implementation of Backend. Every tensor argument lives on this backend's device, except
// in copy(), which also moves data between the host and the device. Method bodies are split
// by family across cuda/*.cu. Cases a kernel does not cover (e.g. more than 8 separate axes)
// throw UnsupportedError: there is never a silent CPU fallback.
#pragma once
#include "backend/backend.h"
#include "backend/cuda/context.cuh"

namespace rk::cuda {

/// The backend of one CUDA device (reached through backend_for(Device{CUDA, index})).
class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int index) : index_(index) {}
  Device device() const override { return Device{DeviceType::CUDA, index_}; }
  /// The device's context (stream, handles), made current.
  DeviceContext& ctx() const { return context(index_); }

  // elementwise.cu
  void copy(const Tensor& src, Tensor& dst) override;
  void fill(Tensor& dst, double value) override;
  void broadcast_to(const Tensor& src, Tensor& dst) override;
  void unary(UnaryOp op, const Tensor& x, Tensor& y, const UnaryParams& p) override;
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                      const UnaryParams& p) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) override;

  // random.cu
  void random_uniform(Tensor& dst, double lo, double hi, Generator& gen) override;
  void random_normal(Tensor& dst, double mean, double stddev, Generator& gen) override;
  void dropout_mask(Tensor& dst, double rate, double scale, Generator& gen) override;

  // reduce.cu
  void reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes, Tensor& out) override;
  void arg_reduce(ArgReduceOp op, const Tensor& x, int axis, Tensor& out) override;
  void softmax(const Tensor& x, Tensor& y, int axis, bool log) override;
  void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, int axis, bool log) override;
  void softmax_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& loss, Tensor& probs) override;
  void sparse_softmax_cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& loss, Tensor& probs) override;
  void sparse_softmax_cross_entropy_backward(const Tensor& probs, const Tensor& labels, const Tensor& gloss,
                                             Tensor& glogits) override;
  void sigmoid_binary_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& out) override;

  // linalg.cu
  void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, double alpha, const Tensor& a,
            int64_t stride_a, const Tensor& b, int64_t stride_b, double beta, Tensor& c, int64_t stride_c) override;

  // movement.cu
  void permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) override;
  void copy_region(const Tensor& src, const std::vector<int64_t>& src_start, Tensor& dst,
                   const std::vector<int64_t>& dst_start, const std::vector<int64_t>& extent,
                   bool accumulate) override;
  void gather(const Tensor& x, const Tensor& idx, int axis, Tensor& out) override;
  void scatter_add(const Tensor& g, const Tensor& idx, int axis, Tensor& gx) override;
  void one_hot(const Tensor& idx, Tensor& out) override;

  // optim.cu
  void optimizer_update(OptimizerRule rule, Tensor& param, const Tensor& grad, std::vector<Tensor>& slots,
                        const OptimizerHyper& h) override;

  // pool.cu
  void pool_forward(PoolMode mode, const Tensor& x, Tensor& y, const WindowGeometry& p) override;
  void pool_backward(PoolMode mode, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                     const WindowGeometry& p) override;

  // conv.cu (cuDNN)
  void conv_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const ConvParams& p,
                    bool relu) override;
  void conv_backward_data(const Tensor& gy, const Tensor& w, Tensor& gx, const ConvParams& p) override;
  void conv_backward_filter(const Tensor& x, const Tensor& gy, Tensor& gw, const ConvParams& p) override;

  // norm.cu (cuDNN)
  void batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& y,
                                   Tensor& mean, Tensor& var, Tensor& invstd) override;
  void batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                    const Tensor& var, double eps, Tensor& y) override;
  void batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& gamma, const Tensor& mean,
                           const Tensor& invstd, double eps, Tensor& gx, Tensor& ggamma, Tensor& gbeta) override;

  // image.cu
  void image_transform(const Tensor& images, const Tensor& transforms, Tensor& out, Interpolation interp,
                       FillMode fill, double fill_value) override;

 private:
  int index_;
};

}  // namespace rk::cuda
