// The engine's tensor: a shared handle to shape + dtype + ref-counted storage.
// Always contiguous row-major (C order); reshape is the only free view.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace rk {

/// Throws Error: a host pointer was asked for a tensor living on `device` (an engine bug).
[[noreturn]] void throw_host_access_error(Device device);

namespace autograd { struct AutogradMeta; }

/// State behind a Tensor handle. Handles copy cheaply and share this.
struct TensorImpl {
  Shape shape;
  DType dtype = DType::Float32;
  std::shared_ptr<Storage> storage;
  size_t offset_bytes = 0;                          ///< start of this tensor inside `storage`
  bool requires_grad = false;                       ///< leaf flag or "produced by a recorded op"
  std::shared_ptr<autograd::AutogradMeta> autograd; ///< grad, grad_fn; owned by autograd/
};

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::Bool; };

/// Handle to a tensor. A default-constructed handle is undefined (no data).
class Tensor {
 public:
  Tensor() = default;
  /// Wraps an existing impl (used by autograd to re-materialise handles).
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  /// Uninitialised tensor of `shape` and `dtype` on `device` (memory from that device's allocator).
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = cpu_device());

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  int rank() const { return impl_->shape.rank(); }
  int64_t numel() const { return impl_->shape.numel(); }
  /// Extent of dimension `i` (negative counts from the end).
  int64_t size(int i) const { return impl_->shape[i]; }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage ? impl_->storage->device() : cpu_device(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }

  /// Untyped pointer to the first element.
  void* raw_data() const {
    return impl_->storage ? static_cast<char*>(impl_->storage->data()) + impl_->offset_bytes : nullptr;
  }
  /// Typed host pointer to the first element; throws TypeError if T does not match dtype() and
  /// Error if the tensor is not on the CPU (device backends use raw_data()).
  template <typename T> T* data() const {
    if (dtype_of<T>::value != impl_->dtype) throw_dtype_error("data access", impl_->dtype, dtype_name(dtype_of<T>::value));
    // Dereferencing a GPU pointer on the host would crash or read garbage: refuse it clearly.
    if (impl_->storage && device().type != DeviceType::CPU) throw_host_access_error(device());
    return static_cast<T*>(raw_data());
  }
  /// The single value of a one-element tensor, as double (read back from the device if needed).
  double item() const;

  /// Same storage seen with another shape of equal numel; carries no autograd history.
  Tensor view_as_shape(const Shape& shape) const;
  /// Same storage without autograd history or requires_grad.
  Tensor detach() const;

  bool requires_grad() const { return impl_->requires_grad; }
  /// Marks a leaf as needing gradients; throws TypeError for non-floating dtypes.
  void set_requires_grad(bool on);

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  /// True if both handles share one impl.
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }
  /// "Tensor(shape=(2, 3), dtype=float32)".
  std::string str() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

/// Copies `src` (on a device of `type`) into the CPU tensor `dst` of equal shape and dtype.
using DeviceToHostCopy = void (*)(const Tensor& src, Tensor& dst);
/// Installs the device-to-host copy for devices of `type`; device backends register it at load
/// time (like their allocators), so that item() reads any device without core knowing backends.
void set_device_to_host_copy(DeviceType type, DeviceToHostCopy copy);

}  // namespace rk
