// backend_for(): which Backend serves a device. The CPU backend always exists; the CUDA one only
// in builds configured with the CUDA toolkit (RKERAS_HAVE_CUDA=1), and only on a usable GPU.
#include "backend/backend.h"

#include "backend/cpu/cpu_backend.h"
#include "backend/fake/fake_device.h"
#include "core/allocator.h"
#include "core/tensor.h"

#if RKERAS_HAVE_CUDA
#include "backend/cuda/cuda_api.h"
#endif

namespace rk {

#if RKERAS_HAVE_CUDA
namespace {
// Registers the CUDA allocators with core at load time. Nothing here touches the GPU: the
// provider runs (and initialises CUDA) only when a tensor is first allocated on a CUDA device.
struct RegisterCudaAllocator {
  RegisterCudaAllocator() {
    set_device_allocator_provider(DeviceType::CUDA, [](Device d) -> Allocator& { return cuda::allocator(d.index); });
    set_device_to_host_copy(DeviceType::CUDA, [](const Tensor& src, Tensor& dst) { backend_of(src).copy(src, dst); });
  }
} register_cuda_allocator;
}  // namespace
#endif

Backend& backend_for(Device device) {
  if (device.type == DeviceType::CPU) {
    static cpu::CpuBackend cpu;
    return cpu;
  }
  // Tests only: the fake GPU (host memory, CPU kernels) takes cuda:0 over from any real one.
  if (fake::fake_cuda_device_enabled()) return fake::fake_backend(device);
#if RKERAS_HAVE_CUDA
  return cuda::backend(device.index);
#else
  throw UnsupportedError("no backend for device " + device.str() +
                         ": this build of rkeras has no CUDA backend (configure found no usable CUDA toolkit, "
                         "or it was built with RKERAS_CUDA=no)");
#endif
}

}  // namespace rk
