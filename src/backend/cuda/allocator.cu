#include "backend/cuda/allocator.cuh"

#include <cstdio>
#include <string>

#include "backend/cuda/check.cuh"
#include "backend/cuda/context.cuh"
#include "backend/cuda/cuda_api.h"

namespace rk::cuda {

namespace {
std::function<void()>& oom_hook() {
  static std::function<void()> h;
  return h;
}

std::string mib(int64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}
}  // namespace

void set_cuda_oom_hook(std::function<void()> hook) { oom_hook() = std::move(hook); }
void set_oom_hook(std::function<void()> hook) { set_cuda_oom_hook(std::move(hook)); }

void CudaCachingAllocator::release_cached_locked() {
  if (stats_.cached == 0) return;
  DeviceContext& ctx = context(index_);
  // Queued kernels may still read blocks freed on the host side: wait before cudaFree.
  ctx.synchronize();
  for (auto& kv : free_)
    for (void* q : kv.second) cudaFree(q);
  free_.clear();
  stats_.cached = 0;
}

void* CudaCachingAllocator::malloc_locked(size_t bucket) {
  if (limit_ > 0 && stats_.current + static_cast<int64_t>(bucket) > limit_) return nullptr;
  context(index_).activate();
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bucket);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear the error so later checks do not report it again
    return nullptr;
  }
  if (e != cudaSuccess) throw_cuda_error(e, "cudaMalloc", __FILE__, __LINE__);
  return p;
}

void CudaCachingAllocator::throw_oom_locked(size_t bucket) {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) cudaGetLastError();
  throw OutOfMemoryError("out of memory on cuda:" + std::to_string(index_) + ": tried to allocate " +
                         mib(static_cast<int64_t>(bucket)) + " with " + mib(stats_.current) +
                         " in use by rkeras (peak " + mib(stats_.peak) + ", cached " + mib(stats_.cached) + ")" +
                         (limit_ > 0 ? ", limit " + mib(limit_) : std::string()) + "; the GPU has " +
                         mib(static_cast<int64_t>(free_b)) + " free of " + mib(static_cast<int64_t>(total_b)));
}

void* CudaCachingAllocator::allocate(size_t nbytes) {
  const size_t bucket = CpuCachingAllocator::bucket_size(nbytes);
  // Attempt 0: the cache, else cudaMalloc. On failure the OOM hook runs (outside the lock: it may
  // free tensors, which re-enters deallocate()); attempt 1: the cache again (the hook may have
  // returned a block of this size), else empty the cache and cudaMalloc; then OutOfMemoryError.
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (attempt == 0) stats_.n_allocs++;
      void* p = nullptr;
      auto it = free_.find(bucket);
      const bool within_limit = limit_ <= 0 || stats_.current + static_cast<int64_t>(bucket) <= limit_;
      if (within_limit && it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        stats_.cached -= static_cast<int64_t>(bucket);
        stats_.n_cache_hits++;
      } else {
        if (attempt == 1) release_cached_locked();
        p = malloc_locked(bucket);
      }
      if (p) {
        stats_.current += static_cast<int64_t>(bucket);
        if (stats_.current > stats_.peak) stats_.peak = stats_.current;
        return p;
      }
      if (attempt == 1) throw_oom_locked(bucket);
    }
    std::function<void()> hook = oom_hook();
    if (hook) hook();
  }
  return nullptr;  // not reached
}

void CudaCachingAllocator::deallocate(void* p, size_t nbytes) {
  if (!p) return;
  const size_t bucket = CpuCachingAllocator::bucket_size(nbytes);
  std::lock_guard<std::mutex> lock(mu_);
  stats_.current -= static_cast<int64_t>(bucket);
  free_[bucket].push_back(p);
  stats_.cached += static_cast<int64_t>(bucket);
}

AllocatorStats CudaCachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CudaCachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

void CudaCachingAllocator::set_limit(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  limit_ = bytes > 0 ? bytes : 0;
}

void set_memory_limit(int index, int64_t bytes) {
  static_cast<CudaCachingAllocator&>(allocator(index)).set_limit(bytes);
}

void CudaCachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak = stats_.current;
}

}  // namespace rk::cuda
