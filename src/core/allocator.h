// Device memory allocation with a size-bucketed cache. Training allocates the same
// sizes every step, so reusing blocks removes malloc/free and page faults from the hot loop.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "core/device.h"

namespace rk {

/// Byte counters of one allocator.
struct AllocatorStats {
  int64_t current = 0;      ///< bytes handed out and not yet returned
  int64_t peak = 0;         ///< maximum of `current` since the last reset
  int64_t cached = 0;       ///< bytes held in the cache, free for reuse
  int64_t n_allocs = 0;     ///< allocation requests served
  int64_t n_cache_hits = 0; ///< requests served from the cache
};

/// Interface of a device allocator; blocks are returned to the allocator that made them.
class Allocator {
 public:
  virtual ~Allocator() = default;
  /// Returns a block of at least `nbytes` bytes (64-byte aligned); throws OutOfMemoryError.
  virtual void* allocate(size_t nbytes) = 0;
  /// Returns a block obtained from allocate() with the same `nbytes`.
  virtual void deallocate(void* p, size_t nbytes) = 0;
  /// Current statistics.
  virtual AllocatorStats stats() const = 0;
  /// Releases every cached (free) block to the system.
  virtual void empty_cache() = 0;
  /// Sets `peak` back to `current`.
  virtual void reset_peak() = 0;
  /// The device this allocator serves.
  virtual Device device() const = 0;
};

/// Caching CPU allocator: rounds sizes to buckets and keeps freed blocks for reuse.
class CpuCachingAllocator : public Allocator {
 public:
  CpuCachingAllocator() = default;
  ~CpuCachingAllocator() override;
  void* allocate(size_t nbytes) override;
  void deallocate(void* p, size_t nbytes) override;
  AllocatorStats stats() const override;
  void empty_cache() override;
  void reset_peak() override;
  Device device() const override { return cpu_device(); }

  /// Caps `current` at `bytes` (0 = no cap); exceeding it fails like a real out-of-memory.
  void set_limit(int64_t bytes);
  /// Called once on allocation failure before the retry; the R glue runs R's GC here,
  /// since R frees external pointers only when its GC runs.
  void set_oom_hook(std::function<void()> hook);
  /// The bucket size a request of `nbytes` is rounded up to.
  static size_t bucket_size(size_t nbytes);

 private:
  void* try_allocate(size_t bucket);
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
  int64_t limit_ = 0;
  std::function<void()> oom_hook_;
};

/// The process-wide CPU allocator.
CpuCachingAllocator& cpu_allocator();

/// Returns the allocator of a device of one type (e.g. one per CUDA ordinal); throws if unusable.
using DeviceAllocatorProvider = Allocator& (*)(Device device);
/// Installs the provider for devices of `type`. Device backends register here at load time, so
/// core never includes a device API's headers.
void set_device_allocator_provider(DeviceType type, DeviceAllocatorProvider provider);
/// The provider installed for devices of `type` (nullptr if none), so a temporary one can restore it.
DeviceAllocatorProvider device_allocator_provider(DeviceType type);
/// The allocator serving `device`: cpu_allocator() or the registered provider's; throws
/// UnsupportedError when this build has none for the device's type.
Allocator& allocator_for(Device device);

}  // namespace rk
