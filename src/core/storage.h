// A ref-counted block of device memory, shared by a tensor and its reshaped views.
#pragma once
#include <cstddef>
#include <memory>

#include "core/allocator.h"

namespace rk {

/// Owns `nbytes` of memory from `alloc`; returns it to the allocator when destroyed.
class Storage {
 public:
  /// Allocates `nbytes` from `alloc` (which must outlive the storage).
  Storage(size_t nbytes, Allocator* alloc)
      : alloc_(alloc), nbytes_(nbytes), data_(nbytes ? alloc->allocate(nbytes) : nullptr) {}
  ~Storage() { if (data_) alloc_->deallocate(data_, nbytes_); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  /// Raw pointer to the first byte (nullptr when empty).
  void* data() const { return data_; }
  /// Size in bytes.
  size_t nbytes() const { return nbytes_; }
  /// Device of the memory.
  Device device() const { return alloc_->device(); }

 private:
  Allocator* alloc_;
  size_t nbytes_;
  void* data_;
};

}  // namespace rk
