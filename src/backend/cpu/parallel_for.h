// A `parallel for` over [0, n) whose serial case is a plain loop. `#pragma omp parallel for if (c)`
// still enters the OpenMP runtime when c is false (GOMP_parallel sets up and frees a one-thread
// team), which costs about as much as the small kernels the condition exists for; a training step
// of a small model runs several such kernels, so the serial case must not touch the runtime.
#pragma once
#include <omp.h>

#include <cstdint>

namespace rk::cpu {

/// Calls f(i) for every i in [0, n): split statically across the OpenMP pool when `parallel` is
/// true (and a pool exists, outside any parallel region), else in order on the calling thread.
template <typename F>
inline void parallel_for(int64_t n, bool parallel, F&& f) {
#ifdef _OPENMP
  if (parallel && n > 1 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace rk::cpu
