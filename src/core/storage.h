// A ref-counted block of device memory, shared by a tensor and its reshaped views.
#pragma once
#include <cstddef>
#include <memory>

#include "core/allocator.h"

namespace rk {

/// Owns `nbytes` of memory from `alloc` and returns it to the allocator when destroyed; or, when
/// made by borrow(), only refers to memory someone else owns.
class Storage {
 public:
  /// Allocates `nbytes` from `alloc` (which must outlive the storage).
  Storage(size_t nbytes, Allocator* alloc)
      : alloc_(alloc), nbytes_(nbytes), data_(nbytes ? alloc->allocate(nbytes) : nullptr),
        device_(alloc->device()) {}
  /// Storage over `nbytes` at `data` labelled `device`, never freed by it; `owner` (may be null)
  /// is kept alive as long as the storage, so the memory outlives every tensor viewing it.
  static std::shared_ptr<Storage> borrow(void* data, size_t nbytes, Device device, std::shared_ptr<const void> owner) {
    return std::shared_ptr<Storage>(new Storage(data, nbytes, device, std::move(owner)));
  }
  ~Storage() { if (data_ && alloc_) alloc_->deallocate(data_, nbytes_); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  /// Raw pointer to the first byte (nullptr when empty).
  void* data() const { return data_; }
  /// Size in bytes.
  size_t nbytes() const { return nbytes_; }
  /// Device of the memory.
  Device device() const { return device_; }
  /// False for borrowed memory.
  bool owns_memory() const { return alloc_ != nullptr; }

 private:
  Storage(void* data, size_t nbytes, Device device, std::shared_ptr<const void> owner)
      : alloc_(nullptr), nbytes_(nbytes), data_(data), device_(device), owner_(std::move(owner)) {}
  Allocator* alloc_;  ///< null for borrowed memory
  size_t nbytes_;
  void* data_;
  Device device_;
  std::shared_ptr<const void> owner_;
};

}  // namespace rk
