// Caching device allocator: cudaMalloc/cudaFree synchronise the device and cost tens of
// microseconds, and training asks for the same sizes every step, so freed blocks are kept in
// size buckets and handed out again. Stream-ordered: every kernel of a device runs on its one
// stream, so a block freed by the host may be reused by the next queued kernel without waiting.
#pragma once
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "core/allocator.h"

namespace rk::cuda {

/// The caching allocator of one CUDA device (buckets as CpuCachingAllocator::bucket_size).
class CudaCachingAllocator final : public Allocator {
 public:
  explicit CudaCachingAllocator(int index) : index_(index) {}
  void* allocate(size_t nbytes) override;
  void deallocate(void* p, size_t nbytes) override;
  AllocatorStats stats() const override;
  /// Waits for the device's stream, then returns every cached block with cudaFree.
  void empty_cache() override;
  void reset_peak() override;
  Device device() const override { return Device{DeviceType::CUDA, index_}; }
  /// Caps `current` at `bytes` (0 = no cap); exceeding it fails like a real out-of-memory
  /// (hook, empty cache, retry, OutOfMemoryError), so that path can be tested deterministically.
  void set_limit(int64_t bytes);

 private:
  void release_cached_locked();
  // A fresh block of `bucket` bytes from cudaMalloc, or nullptr when the device (or the limit)
  // has no room; throws for any other cudart failure.
  void* malloc_locked(size_t bucket);
  [[noreturn]] void throw_oom_locked(size_t bucket);
  int index_;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
  int64_t limit_ = 0;
};

/// Called once when cudaMalloc fails, before the cache is emptied and the call retried
/// (the R glue runs R's garbage collector here, which may free tensors).
void set_cuda_oom_hook(std::function<void()> hook);

}  // namespace rk::cuda
