#include "core/tensor.h"

namespace rk {

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Allocator& alloc = allocator_for(device);  // throws for a device this build or machine lacks
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape.numel()) * dtype_size(dtype), &alloc);
  return Tensor(std::move(impl));
}

namespace {
DeviceToHostCopy g_to_host_cuda = nullptr;
}  // namespace

void set_device_to_host_copy(DeviceType type, DeviceToHostCopy copy) {
  if (type == DeviceType::CUDA) g_to_host_cuda = copy;
}

void throw_host_access_error(Device device) {
  throw Error("internal error: host access to a tensor on " + device.str() +
              "; it must be copied to the CPU first (ops::to_device)");
}

double Tensor::item() const {
  if (numel() != 1) throw ShapeError("item() needs a tensor with one element, got shape " + shape().str());
  if (device().type != DeviceType::CPU) {
    if (!g_to_host_cuda) throw UnsupportedError("item(): no way to read a tensor on " + device().str() + " in this build");
    Tensor host = Tensor::empty(shape(), dtype(), cpu_device());
    g_to_host_cuda(*this, host);
    return host.item();
  }
  switch (dtype()) {
    case DType::Float32: return *data<float>();
    case DType::Float64: return *data<double>();
    case DType::Int32: return *data<int32_t>();
    case DType::Bool: return *data<uint8_t>();
  }
  return 0;
}

Tensor Tensor::view_as_shape(const Shape& shape) const {
  if (shape.numel() != numel())
    throw ShapeError("cannot view a tensor of shape " + this->shape().str() + " (" + std::to_string(numel()) +
                     " elements) as shape " + shape.str() + " (" + std::to_string(shape.numel()) + " elements)");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype();
  impl->storage = impl_->storage;
  impl->offset_bytes = impl_->offset_bytes;
  return Tensor(std::move(impl));
}

Tensor Tensor::detach() const { return view_as_shape(shape()); }

void Tensor::set_requires_grad(bool on) {
  if (on && !is_floating(dtype()))
    throw TypeError("only float32/float64 tensors can require gradients, got " + std::string(dtype_name(dtype())));
  impl_->requires_grad = on;
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  return "Tensor(shape=" + shape().str() + ", dtype=" + dtype_name(dtype()) + ")";
}

}  // namespace rk
