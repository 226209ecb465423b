// The CUDA backend as the rest of the engine and the glue see it: plain C++, no CUDA headers,
// so that only src/backend/cuda/*.cu is compiled by nvcc. Declared only in builds with
// RKERAS_HAVE_CUDA=1; every function may be called on a machine without a GPU or driver.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "core/allocator.h"

namespace rk {
class Backend;
}

namespace rk::cuda {

/// What cudart reports about the GPUs of this machine.
struct Availability {
  int device_count = 0;   ///< usable CUDA devices (0 when none)
  std::string reason;     ///< why none is usable (cudart's message), empty when device_count > 0
};

/// Asks cudart once (cached) for the device count; never throws. Without a driver cudart returns
/// cudaErrorInsufficientDriver, without a GPU cudaErrorNoDevice: both give device_count 0.
const Availability& availability();

/// Properties of one device.
struct DeviceInfo {
  int index = 0;
  std::string name;
  int64_t total_memory = 0;   ///< bytes
  int64_t free_memory = 0;    ///< bytes, as the driver reports now
  int cc_major = 0, cc_minor = 0;
  int multiprocessors = 0;
};

/// Properties of device `index`; throws UnsupportedError without a usable device there.
DeviceInfo device_info(int index);
/// cuDNN's version number (e.g. 91900 for 9.19.0) of the loaded library; needs no GPU.
int cudnn_version();
/// cudart's version (e.g. 13000); needs no GPU.
int runtime_version();
/// The driver's CUDA version, 0 when no driver is installed.
int driver_version();

/// The backend of device `index`; throws UnsupportedError ("CUDA requested but no usable GPU: ...").
Backend& backend(int index);
/// The caching allocator of device `index` (created on first use); throws like backend().
Allocator& allocator(int index);

/// Caps the bytes rkeras holds on device `index` (0 = no cap): beyond it an allocation fails as
/// if the GPU were full (OOM hook, empty cache, retry, OutOfMemoryError). Throws like allocator().
void set_memory_limit(int index, int64_t bytes);

/// Installs the hook every CUDA allocator calls once when cudaMalloc fails, before emptying its
/// cache and retrying (the R glue runs R's garbage collector, which may free tensors).
void set_oom_hook(std::function<void()> hook);

/// Whether float32 GEMMs may use TF32 tensor cores (default false: results match the CPU closely).
bool allow_tf32();
/// Switches TF32 GEMMs on or off for every device.
void set_allow_tf32(bool on);

/// Whether each new convolution problem (shapes, parameters, direction) times cuDNN's algorithms
/// once (cudnnFind*AlgorithmEx, like torch.backends.cudnn.benchmark) instead of taking the first
/// usable one of its heuristic (cudnnGet*Algorithm_v7). Default false.
bool cudnn_benchmark();
/// Switches benchmarked algorithm choice on or off (problems already seen keep their choice).
void set_cudnn_benchmark(bool on);

}  // namespace rk::cuda
