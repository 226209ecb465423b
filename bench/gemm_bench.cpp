// GEMM throughput benchmark: machine FMA peak vs. sgemm on 1024^3 and the 784-256 dense-layer training shapes.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/gemm.h"

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Register-only FMA chains: enough independent accumulators to cover latency x throughput on both FMA ports.
__attribute__((target("avx512f"), noinline)) float fma_loop_avx512(int64_t iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noinline)) float fma_loop_avx2(int64_t iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0] + out[7];
}

// Peak GFLOP/s with all OpenMP threads running the FMA loop of the given level.
double measure_peak(rk::cpu::SimdLevel level) {
  if (level == rk::cpu::SimdLevel::Portable) return 0.0;
  const bool z = level == rk::cpu::SimdLevel::Avx512;
  const int64_t iters = 20000000;
  const double flops_per_iter = z ? 16.0 * 16 * 2 : 12.0 * 8 * 2;
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    volatile float sink = 0.0f;
    int nt = 1;
    const double t0 = now_s();
#pragma omp parallel
    {
      const float r = z ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
#pragma omp critical
      sink = sink + r;
#pragma omp single
      nt = omp_get_num_threads();
    }
    const double dt = now_s() - t0;
    best = std::max(best, nt * iters * flops_per_iter / dt * 1e-9);
  }
  return best;
}

struct Shape {
  const char* name;
  bool ta, tb;
  int64_t m, n, k;
};

double bench_shape(const Shape& s) {
  const int64_t a_rows = s.ta ? s.k : s.m, a_cols = s.ta ? s.m : s.k;
  const int64_t b_rows = s.tb ? s.n : s.k, b_cols = s.tb ? s.k : s.n;
  std::vector<float> a(a_rows * a_cols), b(b_rows * b_cols), c(s.m * s.n);
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (auto& x : a) x = d(rng);
  for (auto& x : b) x = d(rng);
  const double flops = 2.0 * s.m * s.n * s.k;
  // Enough calls per timing sample to last ~20 ms, so timer resolution and fork/join noise are amortised.
  auto run = [&]() {
    rk::cpu::sgemm(s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), a_cols, b.data(), b_cols, 0.0f, c.data(), s.n);
  };
  for (int i = 0; i < 5; ++i) run();
  double t0 = now_s();
  run();
  const double one = std::max(1e-7, now_s() - t0);
  const int inner = std::max(1, static_cast<int>(0.02 / one));
  double best = 0.0;
  for (int rep = 0; rep < 15; ++rep) {
    t0 = now_s();
    for (int i = 0; i < inner; ++i) run();
    const double dt = (now_s() - t0) / inner;
    best = std::max(best, flops / dt * 1e-9);
  }
  return best;
}

}  // namespace

int main() {
  using rk::cpu::SimdLevel;
  const SimdLevel best = rk::cpu::active_simd_level();
  const double peak = measure_peak(best);
  std::printf("threads: %d  detected: %s  active: %s  FMA peak (%s, all threads): %.1f GFLOP/s\n",
              omp_get_max_threads(), rk::cpu::simd_level_name(rk::cpu::detected_simd_level()),
              rk::cpu::simd_level_name(best), rk::cpu::simd_level_name(best), peak);
  const Shape shapes[] = {
      {"1024x1024x1024 NN", false, false, 1024, 1024, 1024},
      {"fwd   C[128,256]=A[128,784]B[784,256]", false, false, 128, 256, 784},
      {"dW    C[784,256]=A^T B, A[128,784]", true, false, 784, 256, 128},
      {"dX    C[128,784]=A B^T, B[784,256]", false, true, 128, 784, 256},
      {"inf1  C[1000,256]=A[1000,784]B[784,256]", false, false, 1000, 256, 784},
      {"inf2  C[1000,128]=A[1000,256]B[256,128]", false, false, 1000, 128, 256},
  };
  std::vector<SimdLevel> levels{best};
  if (best != SimdLevel::Portable) levels.push_back(SimdLevel::Portable);
  std::printf("%-40s %-9s %8s %10s %8s\n", "shape", "level", "threads", "GFLOP/s", "%peak");
  for (SimdLevel lv : levels) {
    rk::cpu::set_simd_level(lv);
    for (const Shape& s : shapes) {
      const double g = bench_shape(s);
      std::printf("%-40s %-9s %8d %10.1f %7.1f%%\n", s.name, rk::cpu::simd_level_name(lv), omp_get_max_threads(), g,
                  peak > 0 ? 100.0 * g / peak : 0.0);
    }
  }
  rk::cpu::set_simd_level(best);
  return 0;
}
