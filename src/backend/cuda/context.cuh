// One context per CUDA device: the stream every kernel of the device runs on (so stream order
// alone orders the work and the allocator may reuse a freed block at once), the cuBLAS and
// cuDNN handles bound to it. (cuDNN workspaces come from the caching allocator.)
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <mutex>

namespace rk::cuda {

/// Per-device state; created on first use of the device, never destroyed (R may free tensors late).
class DeviceContext {
 public:
  /// Makes device `index` current and creates its stream and cuBLAS handle; throws on failure.
  explicit DeviceContext(int index);
  DeviceContext(const DeviceContext&) = delete;
  DeviceContext& operator=(const DeviceContext&) = delete;

  int index() const { return index_; }
  cudaStream_t stream() const { return stream_; }
  /// Number of streaming multiprocessors (sizes grids that must fill the GPU).
  int multiprocessors() const { return multiprocessors_; }
  /// cuBLAS handle on stream(), with the current TF32 setting applied.
  cublasHandle_t cublas();
  /// cuDNN handle on stream(); created on first use (loading cuDNN's sub-libraries takes a while).
  cudnnHandle_t cudnn();
  /// Makes this device current for the calling thread.
  void activate() const;
  /// Waits until every queued operation of the device finished (and reports its errors).
  void synchronize() const;
  /// Queues a copy of `bytes` from pageable host memory `src` to device memory `dst` on stream();
  /// `src` may be reused as soon as this returns. Copies of at most kStageBytes go through pinned
  /// staging buffers: cudart's copy from pageable memory first waits for the stream to drain,
  /// which for the small per-step uploads (batch indices, scalars) meant a hidden synchronisation.
  void upload(void* dst, const void* src, size_t bytes);

  static constexpr size_t kStageBytes = size_t(1) << 20;

 private:
  // A pinned host buffer and the event marking the end of the last copy that read it.
  struct Stage {
    void* host = nullptr;
    cudaEvent_t done = nullptr;
  };
  static constexpr int kStages = 4;
  Stage stages_[kStages];
  int next_stage_ = 0;
  int index_;
  cudaStream_t stream_ = nullptr;
  int multiprocessors_ = 1;
  cublasHandle_t cublas_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  std::mutex mu_;
};

/// The context of device `index`, made current; throws UnsupportedError without a usable device.
DeviceContext& context(int index);

}  // namespace rk::cuda
