#include "core/allocator.h"

#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "core/error.h"

namespace rk {

namespace {
// Blocks above this are not cached in power-of-two buckets (that would waste up to half);
// they round to 1 MiB instead.
constexpr size_t kLargeBlock = size_t(1) << 22;

std::string mib(int64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}
}  // namespace

// --- the shared caching policy ------------------------------------------------------------------

size_t CachingAllocator::bucket_size(size_t nbytes) {
  constexpr size_t kAlign = kAlignment;
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

void CachingAllocator::release_cached_locked() {
  if (stats_.cached == 0) return;
  before_release();
  for (auto& kv : free_)
    for (void* q : kv.second) free_block(q);
  free_.clear();
  stats_.cached = 0;
}

void* CachingAllocator::try_allocate_locked(size_t bucket, bool release) {
  const int64_t b = static_cast<int64_t>(bucket);
  const bool within_limit = limit_ <= 0 || stats_.current + b <= limit_;
  void* p = nullptr;
  auto it = free_.find(bucket);
  if (within_limit && it != free_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    stats_.cached -= b;
    stats_.n_cache_hits++;
  } else {
    if (release) release_cached_locked();
    if (within_limit) p = allocate_block(bucket, stats_);
  }
  if (p) {
    stats_.current += b;
    if (stats_.current > stats_.peak) stats_.peak = stats_.current;
  }
  return p;
}

void* CachingAllocator::allocate(size_t nbytes) {
  const size_t bucket = bucket_size(nbytes);
  std::function<void()> hook;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.n_allocs++;
    if (void* p = try_allocate_locked(bucket, false)) return p;
    hook = oom_hook_;
  }
  // Outside the lock: the hook may free tensors, which re-enters deallocate(). It may also have
  // returned a block of this size, so the retry looks in the cache before emptying it.
  if (hook) hook();
  std::lock_guard<std::mutex> lock(mu_);
  if (void* p = try_allocate_locked(bucket, true)) return p;
  throw_oom_locked(bucket);
}

void CachingAllocator::throw_oom_locked(size_t bucket) const {
  int64_t free_b = 0, total_b = 0;
  const bool device_figures = device_memory(stats_, free_b, total_b);
  throw OutOfMemoryError("out of memory on " + device().str() + ": tried to allocate " +
                         mib(static_cast<int64_t>(bucket)) + " with " + mib(stats_.current) + " in use" +
                         (device_figures ? " by rkeras" : "") + " (peak " + mib(stats_.peak) + ")" +
                         (limit_ > 0 ? ", limit " + mib(limit_) : std::string()) +
                         (device_figures ? "; the GPU has " + mib(free_b) + " free of " + mib(total_b) : std::string()));
}

bool CachingAllocator::device_memory(const AllocatorStats&, int64_t&, int64_t&) const { return false; }

void CachingAllocator::deallocate(void* p, size_t nbytes) {
  if (!p) return;
  const size_t bucket = bucket_size(nbytes);
  std::lock_guard<std::mutex> lock(mu_);
  stats_.current -= static_cast<int64_t>(bucket);
  free_[bucket].push_back(p);
  stats_.cached += static_cast<int64_t>(bucket);
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak = stats_.current;
}

void CachingAllocator::set_limit(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  limit_ = bytes > 0 ? bytes : 0;
}

void CachingAllocator::set_oom_hook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  oom_hook_ = std::move(hook);
}

// --- host memory --------------------------------------------------------------------------------

CpuCachingAllocator::~CpuCachingAllocator() { empty_cache(); }

void* CpuCachingAllocator::allocate_block(size_t bytes, const AllocatorStats&) {
  return std::aligned_alloc(kAlignment, bytes);
}

void CpuCachingAllocator::free_block(void* p) { std::free(p); }

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
