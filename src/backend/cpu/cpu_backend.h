// CPU implementation of Backend: Eigen, OpenMP and per-ISA SIMD kernels. The reference
// for every other backend. Method bodies are split by family across cpu/*.cpp.
#pragma once
#include "backend/backend.h"

namespace rk::cpu {

/// The CPU backend (a singleton reached through backend_for(cpu_device())).
class CpuBackend final : public Backend {
 public:
  Device device() const override { return cpu_device(); }

  // elementwise.cpp
  void copy(const Tensor& src, Tensor& dst) override;
  void fill(Tensor& dst, double value) override;
  void broadcast_to(const Tensor& src, Tensor& dst) override;
  void unary(UnaryOp op, const Tensor& x, Tensor& y, const UnaryParams& p) override;
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                      const UnaryParams& p) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) override;
  void random_uniform(Tensor& dst, double lo, double hi, Generator& gen) override;
  void random_normal(Tensor& dst, double mean, double stddev, Generator& gen) override;
  void dropout_mask(Tensor& dst, double rate, double scale, Generator& gen) override;

  // reduce.cpp
  void reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes, Tensor& out) override;
  void arg_reduce(ArgReduceOp op, const Tensor& x, int axis, Tensor& out) override;
  void softmax(const Tensor& x, Tensor& y, int axis, bool log) override;
  void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, int axis, bool log) override;

  // conv.cpp
  void conv_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const ConvParams& p,
                    bool relu) override;
  void conv_backward_data(const Tensor& gy, const Tensor& w, Tensor& gx, const ConvParams& p) override;
  void conv_backward_filter(const Tensor& x, const Tensor& gy, Tensor& gw, const ConvParams& p) override;
  void conv_backward(const Tensor& x, const Tensor& w, const Tensor& y, const Tensor& gy, Tensor& gx, Tensor& gw,
                     Tensor& gbias, const ConvParams& p, bool relu) override;
  // pool.cpp
  void pool_forward(PoolMode mode, const Tensor& x, Tensor& y, const WindowGeometry& p) override;
  void pool_backward(PoolMode mode, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                     const WindowGeometry& p) override;
  // image.cpp
  void image_transform(const Tensor& images, const Tensor& transforms, Tensor& out, Interpolation interp,
                       FillMode fill, double fill_value) override;
  void softmax_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& loss, Tensor& probs) override;
  void sparse_softmax_cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& loss,
                                    Tensor& probs) override;
  void sparse_softmax_cross_entropy_backward(const Tensor& probs, const Tensor& labels, const Tensor& gloss,
                                             Tensor& glogits) override;
  void sigmoid_binary_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& out) override;

  // linalg.cpp
  void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, double alpha,
            const Tensor& a, int64_t stride_a, const Tensor& b, int64_t stride_b, double beta, Tensor& c,
            int64_t stride_c) override;

  // norm.cpp
  void batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& y,
                                   Tensor& mean, Tensor& var, Tensor& invstd) override;
  void batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                    const Tensor& var, double eps, Tensor& y) override;
  void batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& gamma, const Tensor& mean,
                           const Tensor& invstd, double eps, Tensor& gx, Tensor& ggamma, Tensor& gbeta) override;

  // movement.cpp
  void permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) override;
  void copy_region(const Tensor& src, const std::vector<int64_t>& src_start, Tensor& dst,
                   const std::vector<int64_t>& dst_start, const std::vector<int64_t>& extent,
                   bool accumulate) override;
  void gather(const Tensor& x, const Tensor& idx, int axis, Tensor& out) override;
  void scatter_add(const Tensor& g, const Tensor& idx, int axis, Tensor& gx) override;
  void one_hot(const Tensor& idx, Tensor& out) override;

  // optim.cpp
  void optimizer_update(OptimizerRule rule, Tensor& param, const Tensor& grad, std::vector<Tensor>& slots,
                        const OptimizerHyper& h) override;
};

}  // namespace rk::cpu
