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

/// The caching policy every device allocator shares: sizes are rounded to buckets, freed blocks
/// are kept per bucket and handed out again, an optional limit caps the bytes in use, and a
/// request that finds no room runs the OOM hook (outside the lock), retries from the cache, then
/// empties the cache and retries, and only then throws OutOfMemoryError with the figures.
/// Subclasses supply the device's raw memory through the protected hooks (called under the lock);
/// one that is ever destroyed calls empty_cache() in its destructor (the base's cannot reach free_block).
class CachingAllocator : public Allocator {
 public:
  /// Alignment of every block, in bytes.
  static constexpr size_t kAlignment = 64;
  void* allocate(size_t nbytes) final;
  void deallocate(void* p, size_t nbytes) final;
  AllocatorStats stats() const final;
  void empty_cache() final;
  void reset_peak() final;

  /// Caps `current` at `bytes` (0 or less = no cap); exceeding it fails like a real out-of-memory
  /// (hook, cache emptied, retry, OutOfMemoryError), so that path can be tested deterministically.
  void set_limit(int64_t bytes);
  /// Called once on allocation failure before the retry; the R glue runs R's GC here,
  /// since R frees external pointers only when its GC runs.
  void set_oom_hook(std::function<void()> hook);
  /// The bucket size a request of `nbytes` is rounded up to.
  static size_t bucket_size(size_t nbytes);

 protected:
  /// A fresh block of `bytes` (a bucket size) from the device, or nullptr when the device has no
  /// room; `s` are the figures before this block. Throws only for failures other than no room.
  virtual void* allocate_block(size_t bytes, const AllocatorStats& s) = 0;
  /// Returns a block from allocate_block() to the device.
  virtual void free_block(void* p) = 0;
  /// Runs before cached blocks go back to the device (a GPU waits for kernels still using them).
  virtual void before_release() {}
  /// The device's free and total bytes for the out-of-memory message; false where the device has
  /// no such figures (the host), and the message then names only rkeras's own use.
  virtual bool device_memory(const AllocatorStats& s, int64_t& free_bytes, int64_t& total_bytes) const;

 private:
  // One pass of allocate(): the cache (within the limit), else a fresh block; with `release`
  // the cache is emptied before the fresh block is asked for. nullptr when there is no room.
  void* try_allocate_locked(size_t bucket, bool release);
  void release_cached_locked();
  [[noreturn]] void throw_oom_locked(size_t bucket) const;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
  int64_t limit_ = 0;
  std::function<void()> oom_hook_;
};

/// Caching CPU allocator: 64-byte aligned host memory under the shared caching policy.
class CpuCachingAllocator final : public CachingAllocator {
 public:
  CpuCachingAllocator() = default;
  ~CpuCachingAllocator() override;
  Device device() const override { return cpu_device(); }

 protected:
  void* allocate_block(size_t bytes, const AllocatorStats& s) override;
  void free_block(void* p) override;
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
