#include "core/allocator.h"

#include <cstdlib>
#include <new>
#include <string>

#include "core/error.h"

namespace rk {

namespace {
constexpr size_t kAlign = 64;
// Blocks above this are not cached in power-of-two buckets (that would waste up to half);
// they round to 1 MiB instead.
constexpr size_t kLargeBlock = size_t(1) << 22;

std::string mib(int64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}
}  // namespace

size_t CpuCachingAllocator::bucket_size(size_t nbytes) {
  if (nbytes <= kAlign) return kAlign;
  if (nbytes >= kLargeBlock) return (nbytes + (size_t(1) << 20) - 1) & ~((size_t(1) << 20) - 1);
  // Quarter steps between powers of two: at most 25% waste, few distinct buckets.
  size_t p = kAlign;
  while (p < nbytes) p <<= 1;
  size_t q = p >> 3;  // p/2 + k*(p/8) for k = 1..4
  size_t s = p >> 1;
  while (s < nbytes) s += q;
  return (s + kAlign - 1) & ~(kAlign - 1);
}

CpuCachingAllocator::~CpuCachingAllocator() { empty_cache(); }

void* CpuCachingAllocator::try_allocate(size_t bucket) {
  if (limit_ > 0 && stats_.current + static_cast<int64_t>(bucket) > limit_) return nullptr;
  return std::aligned_alloc(kAlign, bucket);
}

void* CpuCachingAllocator::allocate(size_t nbytes) {
  size_t bucket = bucket_size(nbytes);
  std::function<void()> hook;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.n_allocs++;
    auto it = free_.find(bucket);
    void* p = nullptr;
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      stats_.cached -= static_cast<int64_t>(bucket);
      stats_.n_cache_hits++;
    } else {
      p = try_allocate(bucket);
      if (!p && stats_.cached > 0) {
        for (auto& kv : free_)
          for (void* q : kv.second) std::free(q);
        free_.clear();
        stats_.cached = 0;
        p = try_allocate(bucket);
      }
    }
    if (p) {
      stats_.current += static_cast<int64_t>(bucket);
      if (stats_.current > stats_.peak) stats_.peak = stats_.current;
      return p;
    }
    hook = oom_hook_;
  }
  // The hook may free tensors (and so re-enter deallocate), hence outside the lock.
  if (hook) hook();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& kv : free_)
    for (void* q : kv.second) std::free(q);
  free_.clear();
  stats_.cached = 0;
  void* p = try_allocate(bucket);
  if (!p)
    throw OutOfMemoryError("out of memory on cpu: tried to allocate " + mib(static_cast<int64_t>(bucket)) +
                           " with " + mib(stats_.current) + " in use (peak " + mib(stats_.peak) + ")" +
                           (limit_ > 0 ? ", limit " + mib(limit_) : std::string()));
  stats_.current += static_cast<int64_t>(bucket);
  if (stats_.current > stats_.peak) stats_.peak = stats_.current;
  return p;
}

void CpuCachingAllocator::deallocate(void* p, size_t nbytes) {
  if (!p) return;
  size_t bucket = bucket_size(nbytes);
  std::lock_guard<std::mutex> lock(mu_);
  stats_.current -= static_cast<int64_t>(bucket);
  free_[bucket].push_back(p);
  stats_.cached += static_cast<int64_t>(bucket);
}

AllocatorStats CpuCachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CpuCachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& kv : free_)
    for (void* q : kv.second) std::free(q);
  free_.clear();
  stats_.cached = 0;
}

void CpuCachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak = stats_.current;
}

void CpuCachingAllocator::set_limit(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  limit_ = bytes;
}

void CpuCachingAllocator::set_oom_hook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  oom_hook_ = std::move(hook);
}

namespace {
DeviceAllocatorProvider& cuda_provider() {
  static DeviceAllocatorProvider p = nullptr;
  return p;
}
}  // namespace

void set_device_allocator_provider(DeviceType type, DeviceAllocatorProvider provider) {
  if (type == DeviceType::CUDA) cuda_provider() = provider;
}

DeviceAllocatorProvider device_allocator_provider(DeviceType type) {
  return type == DeviceType::CUDA ? cuda_provider() : nullptr;
}

Allocator& allocator_for(Device device) {
  if (device.type == DeviceType::CPU) return cpu_allocator();
  DeviceAllocatorProvider p = cuda_provider();
  if (!p) throw UnsupportedError("device " + device.str() + " is not available in this build (no CUDA backend)");
  return p(device);
}

CpuCachingAllocator& cpu_allocator() {
  // Leaked on purpose: tensors held by R may be finalised after static destructors run.
  static CpuCachingAllocator* a = new CpuCachingAllocator();
  return *a;
}

}  // namespace rk
