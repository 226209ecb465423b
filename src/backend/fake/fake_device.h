// A fake GPU FOR TESTS ONLY: tensors labelled cuda:0 whose memory is ordinary host memory, computed
// by forwarding every Backend method to the CPU backend. It lets machines without a GPU (CI) run
// everything above the backend on "the GPU": device placement in the engine, the R glue and the
// layers (no host reads of device memory, no ops mixing CPU and GPU tensors, results copied back,
// out-of-memory handling). It never checks a CUDA kernel. Off unless enable_fake_cuda_device(true).
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "core/allocator.h"

namespace rk::fake {

/// Host memory labelled cuda:0, with a fixed capacity, under core's CachingAllocator policy (the
/// CUDA allocator's): a request that would take the bytes in use plus the cache past the capacity
/// fails like cudaMalloc, before any host memory is touched, and ends in the same OutOfMemoryError.
class FakeCudaAllocator final : public CachingAllocator {
 public:
  FakeCudaAllocator() = default;
  ~FakeCudaAllocator() override;
  Device device() const override { return Device{DeviceType::CUDA, 0}; }

  /// Sets the fake GPU's total memory in bytes (> 0; default 2 GiB).
  void set_capacity(int64_t bytes);
  /// The fake GPU's total memory in bytes.
  int64_t capacity() const { return capacity_; }
  /// Bytes the fake GPU has free: capacity minus the bytes in use and cached.
  int64_t free_bytes() const;

 protected:
  void* allocate_block(size_t bytes, const AllocatorStats& s) override;
  void free_block(void* p) override;
  bool device_memory(const AllocatorStats& s, int64_t& free_bytes, int64_t& total_bytes) const override;

 private:
  // Atomic: read under the allocator's lock by allocate_block(), set without it.
  std::atomic<int64_t> capacity_{int64_t(2) << 30};
};

/// The process-wide fake-GPU allocator (never destroyed: tensors may outlive static destructors).
FakeCudaAllocator& fake_allocator();

/// Serves cuda:0 with the CPU backend's kernels: every method checks that its tensors are on
/// cuda:0 (copy() may also cross to and from the CPU), views them as CPU tensors over the same
/// bytes and calls the CPU backend, so results are identical to the CPU's.
class FakeCudaBackend final : public Backend {
 public:
  Device device() const override { return Device{DeviceType::CUDA, 0}; }
  void copy(const Tensor& src, Tensor& dst) override;
  void fill(Tensor& dst, double value) override;
  void broadcast_to(const Tensor& src, Tensor& dst) override;
  void unary(UnaryOp op, const Tensor& x, Tensor& y, const UnaryParams& p) override;
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                      const UnaryParams& p) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) override;
  void reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes, Tensor& out) override;
  void arg_reduce(ArgReduceOp op, const Tensor& x, int axis, Tensor& out) override;
  void gemm(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, double alpha,
            const Tensor& a, int64_t stride_a, const Tensor& b, int64_t stride_b, double beta, Tensor& c,
            int64_t stride_c) override;
  void conv_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const ConvParams& p,
                    bool relu) override;
  void conv_backward_data(const Tensor& gy, const Tensor& w, Tensor& gx, const ConvParams& p) override;
  void conv_backward_filter(const Tensor& x, const Tensor& gy, Tensor& gw, const ConvParams& p) override;
  void conv_backward(const Tensor& x, const Tensor& w, const Tensor& y, const Tensor& gy, Tensor& gx, Tensor& gw,
                     Tensor& gbias, const ConvParams& p, bool relu) override;
  void pool_forward(PoolMode mode, const Tensor& x, Tensor& y, const WindowGeometry& p) override;
  void pool_backward(PoolMode mode, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                     const WindowGeometry& p) override;
  void image_transform(const Tensor& images, const Tensor& transforms, Tensor& out, Interpolation interp,
                       FillMode fill, double fill_value) override;
  void batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& y,
                                   Tensor& mean, Tensor& var, Tensor& invstd) override;
  void batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                    const Tensor& var, double eps, Tensor& y) override;
  void batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& gamma, const Tensor& mean,
                           const Tensor& invstd, double eps, Tensor& gx, Tensor& ggamma, Tensor& gbeta) override;
  void softmax(const Tensor& x, Tensor& y, int axis, bool log) override;
  void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, int axis, bool log) override;
  void permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) override;
  void copy_region(const Tensor& src, const std::vector<int64_t>& src_start, Tensor& dst,
                   const std::vector<int64_t>& dst_start, const std::vector<int64_t>& extent,
                   bool accumulate) override;
  void gather(const Tensor& x, const Tensor& idx, int axis, Tensor& out) override;
  void scatter_add(const Tensor& g, const Tensor& idx, int axis, Tensor& gx) override;
  void one_hot(const Tensor& idx, Tensor& out) override;
  void random_uniform(Tensor& dst, double lo, double hi, Generator& gen) override;
  void random_normal(Tensor& dst, double mean, double stddev, Generator& gen) override;
  void dropout_mask(Tensor& dst, double rate, double scale, Generator& gen) override;
  void softmax_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& loss, Tensor& probs) override;
  void sparse_softmax_cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& loss,
                                    Tensor& probs) override;
  void sparse_softmax_cross_entropy_backward(const Tensor& probs, const Tensor& labels, const Tensor& gloss,
                                             Tensor& glogits) override;
  void sigmoid_binary_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& out) override;
  void optimizer_update(OptimizerRule rule, Tensor& param, const Tensor& grad, std::vector<Tensor>& slots,
                        const OptimizerHyper& h) override;
};

/// Host<->device traffic through the fake GPU's copy() since the last reset (bytes of the source).
struct TransferStats {
  int64_t h2d_bytes = 0;  ///< host to device
  int64_t h2d_count = 0;
  int64_t d2h_bytes = 0;  ///< device to host
  int64_t d2h_count = 0;
};
/// The traffic counters (tests check, e.g., that fit() uploads its data once, not every epoch).
TransferStats transfer_stats();
/// Sets the traffic counters to zero.
void reset_transfer_stats();

/// A CPU-labelled tensor over the same bytes as `t` (undefined stays undefined); it keeps t's
/// memory alive. Throws Error when `t` is defined and not on `expected` (a placement bug).
Tensor host_alias(const Tensor& t, Device expected, const char* method);

/// TESTING ONLY. Switches the fake GPU on or off: while on, cuda:0's backend, allocator and
/// device-to-host copy are the fake's (in CUDA builds too: the fake wins over the real GPU); off
/// restores what was installed before. Returns the previous state. Tensors made on the fake must
/// be freed before the real CUDA backend is used again; their memory stays valid meanwhile.
bool enable_fake_cuda_device(bool on);
/// Whether the fake GPU serves cuda:0 now.
bool fake_cuda_device_enabled();
/// The fake backend for `device`; throws UnsupportedError for any device but cuda:0.
Backend& fake_backend(Device device);

}  // namespace rk::fake
