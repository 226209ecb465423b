// A `parallel for` over [0, n) whose serial case is a plain loop. `#pragma omp parallel for if (c)`
// still enters the OpenMP runtime when c is false (GOMP_parallel sets up and frees a one-thread
// team), which costs about as much as the small kernels the condition exists for; a training step
// of a small model runs several such kernels, so the serial case must not touch the runtime.
#pragma once
#include <omp.h>

#include <algorithm>
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

/// Calls f(begin, end) once per thread on contiguous chunks of [0, n) when n > grain (and a pool
/// exists, outside any parallel region), else f(0, n) on the calling thread. Contiguous chunks keep
/// each thread's accesses streaming, which elementwise and optimizer kernels need.
template <typename F>
inline void parallel_range(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
#ifdef _OPENMP
  if (n > grain && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel
    {
      const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t chunk = (n + nt - 1) / nt;
      const int64_t b = t * chunk, e = std::min(n, b + chunk);
      if (b < e) f(b, e);
    }
    return;
  }
#endif
  f(int64_t{0}, n);
}

}  // namespace rk::cpu
