// Helpers shared by the CPU-vs-CUDA engine tests (test_cuda_parity*.cpp, test_cuda_training.cpp):
// the skip when no GPU is usable, the two backends, host <-> device copies and random inputs.
#pragma once
#include <gtest/gtest.h>

#include "backend/backend.h"
#include "test_util.h"

#if RKERAS_HAVE_CUDA
#include "backend/cuda/cuda_api.h"
#endif

// Skips the calling test unless a CUDA device is usable, giving the reason cudart gave (or that the
// build has no CUDA backend), so the CUDA tests pass as SKIPPED on machines without a GPU.
#if RKERAS_HAVE_CUDA
#define REQUIRE_GPU()                                                               \
  do {                                                                              \
    const ::rk::cuda::Availability& a = ::rk::cuda::availability();                 \
    if (a.device_count == 0) GTEST_SKIP() << "no usable CUDA device: " << a.reason; \
  } while (0)
#else
#define REQUIRE_GPU() GTEST_SKIP() << "this build has no CUDA backend (configure with -DRKERAS_CUDA=ON)"
#endif

namespace rk::testing {

/// The first CUDA device, where every CUDA test runs.
inline const Device kGpu{DeviceType::CUDA, 0};

/// The CPU backend (the reference the CUDA results are compared with).
inline Backend& cpu() { return backend_for(cpu_device()); }
/// The CUDA backend of kGpu.
inline Backend& gpu() { return backend_for(kGpu); }

/// A copy of host tensor `t` on kGpu (same shape and dtype).
inline Tensor to_gpu(const Tensor& t) {
  Tensor d = Tensor::empty(t.shape(), t.dtype(), kGpu);
  gpu().copy(t, d);
  return d;
}

/// A host copy of device tensor `d` (same shape and dtype).
inline Tensor to_cpu(const Tensor& d) {
  Tensor h = Tensor::empty(d.shape(), d.dtype(), cpu_device());
  gpu().copy(d, h);
  return h;
}

/// Host tensor of `shape` and dtype `dt` with rand()'s values in [lo, hi), converted from float64.
inline Tensor rnd(const Shape& shape, DType dt, double lo, double hi, uint64_t seed) {
  Tensor t64 = rand(shape, lo, hi, seed);
  Tensor t = Tensor::empty(shape, dt);
  cpu().copy(t64, t);
  return t;
}

/// Host float32 tensor of `shape` with values in [lo, hi).
inline Tensor rnd(const Shape& shape, double lo = -2, double hi = 2, uint64_t seed = 7) {
  return rnd(shape, DType::Float32, lo, hi, seed);
}

}  // namespace rk::testing
