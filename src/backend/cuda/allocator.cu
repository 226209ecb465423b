#include "backend/cuda/allocator.cuh"

#include "backend/cuda/check.cuh"
#include "backend/cuda/context.cuh"
#include "backend/cuda/cuda_api.h"

namespace rk::cuda {

namespace {
std::function<void()>& oom_hook() {
  static std::function<void()> h;
  return h;
}
}  // namespace

void set_cuda_oom_hook(std::function<void()> hook) { oom_hook() = std::move(hook); }
void set_oom_hook(std::function<void()> hook) { set_cuda_oom_hook(std::move(hook)); }

// One hook serves every device (and devices opened later): each allocator forwards to it.
CudaCachingAllocator::CudaCachingAllocator(int index) : index_(index) {
  set_oom_hook([] {
    if (oom_hook()) oom_hook()();
  });
}

void* CudaCachingAllocator::allocate_block(size_t bytes, const AllocatorStats&) {
  context(index_).activate();
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear the error so later checks do not report it again
    return nullptr;
  }
  if (e != cudaSuccess) throw_cuda_error(e, "cudaMalloc", __FILE__, __LINE__);
  return p;
}

void CudaCachingAllocator::free_block(void* p) { cudaFree(p); }

void CudaCachingAllocator::before_release() { context(index_).synchronize(); }

bool CudaCachingAllocator::device_memory(const AllocatorStats&, int64_t& free_bytes, int64_t& total_bytes) const {
  context(index_).activate();  // cudaMemGetInfo reports the current device
  size_t f = 0, t = 0;
  if (cudaMemGetInfo(&f, &t) != cudaSuccess) cudaGetLastError();
  free_bytes = static_cast<int64_t>(f);
  total_bytes = static_cast<int64_t>(t);
  return true;
}

void set_memory_limit(int index, int64_t bytes) {
  static_cast<CudaCachingAllocator&>(allocator(index)).set_limit(bytes);
}

}  // namespace rk::cuda
