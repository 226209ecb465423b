// Device discovery, per-device contexts and allocators, and the error helpers of check.cuh.
// Nothing runs at load time: cudart loads the driver lazily, so the package loads on machines
// without a GPU or driver, and the first query below reports why CUDA is unusable.
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/cuda/allocator.cuh"
#include "backend/cuda/check.cuh"
#include "backend/cuda/context.cuh"
#include "backend/cuda/cuda_api.h"
#include "backend/cuda/cuda_backend.cuh"

namespace rk::cuda {

namespace {
std::string where(const char* what, const char* file, int line) {
  return std::string(what) + " failed at " + file + ":" + std::to_string(line) + ": ";
}

std::atomic<bool> g_tf32{false};
std::atomic<bool> g_cudnn_benchmark{false};

// Per-device objects, created on first use and kept for the life of the process: R may
// finalise tensors after static destructors ran, so they are never destroyed.
struct Registry {
  std::mutex mu;
  std::vector<DeviceContext*> contexts;
  std::vector<CudaCachingAllocator*> allocators;
  std::vector<CudaBackend*> backends;
};
Registry& registry() {
  static Registry* r = new Registry();
  return *r;
}

// Throws UnsupportedError unless `index` names a usable device.
void require_device(int index) {
  const Availability& a = availability();
  if (a.device_count == 0) throw UnsupportedError("CUDA requested but no usable GPU: " + a.reason);
  if (index < 0 || index >= a.device_count)
    throw UnsupportedError("CUDA device " + std::to_string(index) + " does not exist (this machine has " +
                           std::to_string(a.device_count) + " CUDA device" + (a.device_count == 1 ? "" : "s") + ")");
}

template <typename T, typename Make>
T& per_device(std::vector<T*>& slot, int index, Make make) {
  require_device(index);
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (slot.size() <= static_cast<size_t>(index)) slot.resize(static_cast<size_t>(index) + 1, nullptr);
  if (!slot[static_cast<size_t>(index)]) slot[static_cast<size_t>(index)] = make();
  return *slot[static_cast<size_t>(index)];
}
}  // namespace

// ---------------------------------------------------------------------------------- errors
void throw_cuda_error(cudaError_t e, const char* what, const char* file, int line) {
  const std::string msg = where(what, file, line) + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
  if (e == cudaErrorMemoryAllocation) throw OutOfMemoryError(msg);
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorNoKernelImageForDevice)
    throw UnsupportedError(msg);
  throw Error(msg);
}

void throw_cublas_error(cublasStatus_t s, const char* what, const char* file, int line) {
  const std::string msg = where(what, file, line) + cublasGetStatusName(s) + " (" + cublasGetStatusString(s) + ")";
  if (s == CUBLAS_STATUS_ALLOC_FAILED) throw OutOfMemoryError(msg);
  throw Error(msg);
}

void throw_cudnn_error(cudnnStatus_t s, const char* what, const char* file, int line) {
  const std::string msg = where(what, file, line) + cudnnGetErrorString(s);
  if (s == CUDNN_STATUS_ALLOC_FAILED) throw OutOfMemoryError(msg);
  if (s == CUDNN_STATUS_NOT_SUPPORTED) throw UnsupportedError(msg);
  throw Error(msg);
}

// ------------------------------------------------------------------------------ discovery
const Availability& availability() {
  static const Availability a = [] {
    Availability r;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      // cudaErrorInsufficientDriver: no driver (libcuda) or one too old; cudaErrorNoDevice: no GPU.
      r.reason = std::string(cudaGetErrorString(e)) + " (" + cudaGetErrorName(e) + ")";
      cudaGetLastError();
      n = 0;
    } else if (n == 0) {
      r.reason = "cudart reports no CUDA devices";
    }
    r.device_count = n;
    return r;
  }();
  return a;
}

DeviceInfo device_info(int index) {
  require_device(index);
  cudaDeviceProp p;
  RK_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
  DeviceInfo d;
  d.index = index;
  d.name = p.name;
  d.total_memory = static_cast<int64_t>(p.totalGlobalMem);
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.multiprocessors = p.multiProcessorCount;
  context(index).activate();
  size_t free_b = 0, total_b = 0;
  RK_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  d.free_memory = static_cast<int64_t>(free_b);
  return d;
}

int cudnn_version() { return static_cast<int>(cudnnGetVersion()); }

int runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

int driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) v = 0;
  return v;
}

bool allow_tf32() { return g_tf32.load(); }
void set_allow_tf32(bool on) {
  g_tf32.store(on);
}

bool cudnn_benchmark() { return g_cudnn_benchmark.load(); }
void set_cudnn_benchmark(bool on) { g_cudnn_benchmark.store(on); }

// ------------------------------------------------------------------------------- contexts
DeviceContext::DeviceContext(int index) : index_(index) {
  RK_CUDA_CHECK(cudaSetDevice(index));
  RK_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  RK_CUDA_CHECK(cudaDeviceGetAttribute(&multiprocessors_, cudaDevAttrMultiProcessorCount, index));
  RK_CUBLAS_CHECK(cublasCreate(&cublas_));
  RK_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
}

void DeviceContext::activate() const { RK_CUDA_CHECK(cudaSetDevice(index_)); }

void DeviceContext::synchronize() const { RK_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

void DeviceContext::upload(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  if (bytes > kStageBytes) {  // large uploads (whole data sets, weights) stay direct
    RK_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  Stage& st = stages_[next_stage_];
  next_stage_ = (next_stage_ + 1) % kStages;
  if (!st.host) {
    RK_CUDA_CHECK(cudaMallocHost(&st.host, kStageBytes));
    RK_CUDA_CHECK(cudaEventCreateWithFlags(&st.done, cudaEventDisableTiming));
  } else {
    RK_CUDA_CHECK(cudaEventSynchronize(st.done));  // the copy that last read this buffer is done
  }
  std::memcpy(st.host, src, bytes);
  RK_CUDA_CHECK(cudaMemcpyAsync(dst, st.host, bytes, cudaMemcpyHostToDevice, stream_));
  RK_CUDA_CHECK(cudaEventRecord(st.done, stream_));
}

cublasHandle_t DeviceContext::cublas() {
  std::lock_guard<std::mutex> lock(mu_);
  // TF32 off keeps float32 GEMMs within float32 rounding of the CPU results.
  RK_CUBLAS_CHECK(cublasSetMathMode(cublas_, allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  return cublas_;
}

cudnnHandle_t DeviceContext::cudnn() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!cudnn_) {
    RK_CUDNN_CHECK(cudnnCreate(&cudnn_));
    RK_CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
  }
  return cudnn_;
}

DeviceContext& context(int index) {
  DeviceContext& c = per_device(registry().contexts, index, [index] { return new DeviceContext(index); });
  c.activate();
  return c;
}

Allocator& allocator(int index) {
  return per_device(registry().allocators, index, [index] { return new CudaCachingAllocator(index); });
}

Backend& backend(int index) {
  return per_device(registry().backends, index, [index] { return new CudaBackend(index); });
}

}  // namespace rk::cuda
