// Caching device allocator: cudaMalloc/cudaFree synchronise the device and cost tens of
// microseconds, and training asks for the same sizes every step, so freed blocks are kept in
// size buckets and handed out again. Stream-ordered: every kernel of a device runs on its one
// stream, so a block freed by the host may be reused by the next queued kernel without waiting.
#pragma once
#include <functional>

#include "core/allocator.h"

namespace rk::cuda {

/// The caching allocator of one CUDA device: core's CachingAllocator policy over cudaMalloc/cudaFree.
class CudaCachingAllocator final : public CachingAllocator {
 public:
  /// The allocator of device `index`; its OOM hook is the one set_cuda_oom_hook() installs.
  explicit CudaCachingAllocator(int index);
  Device device() const override { return Device{DeviceType::CUDA, index_}; }

 protected:
  // A fresh block from cudaMalloc, or nullptr when the device has no room; throws for any other
  // cudart failure.
  void* allocate_block(size_t bytes, const AllocatorStats& s) override;
  void free_block(void* p) override;
  // Queued kernels may still read blocks freed on the host side: wait for the stream before cudaFree.
  void before_release() override;
  bool device_memory(const AllocatorStats& s, int64_t& free_bytes, int64_t& total_bytes) const override;

 private:
  int index_;
};

/// Called once when cudaMalloc fails, before the cache is emptied and the call retried
/// (the R glue runs R's garbage collector here, which may free tensors).
void set_cuda_oom_hook(std::function<void()> hook);

}  // namespace rk::cuda
