// GEMM driver: argument handling, SIMD dispatch, BLIS-style blocking and OpenMP partitioning.
// The ISA translation units only provide packing routines and a macro-kernel (gemm_kernels.h);
// all threading lives here so that no OpenMP runtime code is compiled for a specific ISA.
#include "backend/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/gemm_kernels.h"

namespace rk::cpu {
namespace {

using detail::SgemmKernels;

// KC bounds the depth of one packed pass: a 14 x 384 float A micro-panel (21 KiB) stays resident in the 48 KiB L1.
constexpr int64_t kKcMax = 384;
// Rows of A packed per pass into the shared block of the n split (the m split packs one micro-panel at a time).
constexpr int64_t kMcMax = 1008;
// Floats of packed B kept per pass (1 MiB), about half of the 2 MiB per-core L2, leaving room for A and C.
constexpr int64_t kBBlockFloats = 262144;
// Below this many multiply-adds a fork/join (a few microseconds) costs more than a second thread saves.
constexpr int64_t kMinParallelWork = int64_t{1} << 19;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grow-only 64-byte aligned scratch; one per thread and role, reused across calls to avoid malloc per GEMM.
class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(ptr_); }

  // Returns nullptr on allocation failure; callers fall back to the portable path.
  float* floats(int64_t count) {
    const size_t bytes = static_cast<size_t>(count) * sizeof(float) + 64;
    if (bytes > cap_) {
      std::free(ptr_);
      ptr_ = nullptr;
      cap_ = 0;
      const size_t rounded = (bytes + 4095) / 4096 * 4096;
      void* p = std::aligned_alloc(64, rounded);
      if (p == nullptr) return nullptr;
      ptr_ = p;
      cap_ = rounded;
    }
    return static_cast<float*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t cap_ = 0;
};

thread_local ScratchBuffer tl_shared_pack;
thread_local ScratchBuffer tl_private_pack;

// Splits `units` work units into nt contiguous pieces whose sizes differ by at most one.
inline void split_range(int64_t units, int nt, int tid, int64_t* begin, int64_t* end) {
  *begin = units * tid / nt;
  *end = units * (tid + 1) / nt;
}

int thread_budget(int64_t m, int64_t n, int64_t k) {
  if (omp_in_parallel()) return 1;
  if (m * n * k < kMinParallelWork) return 1;
  return std::max(1, omp_get_max_threads());
}

template <typename T>
void scale_c(int64_t m, int64_t n, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (beta == T(0)) {
      std::fill(row, row + n, T(0));
    } else if (beta != T(1)) {
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

struct SgemmArgs {
  bool ta, tb;
  int64_t m, n, k;
  float alpha;
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  float beta;
  float* c;
  int64_t ldc;

  const float* a_at(int64_t i, int64_t p) const { return ta ? a + p * lda + i : a + i * lda + p; }
  const float* b_at(int64_t p, int64_t j) const { return tb ? b + j * ldb + p : b + p * ldb + j; }
};

// How the C matrix is divided among threads. Splitting n shares the packed A block (each thread packs
// its own B columns); splitting m shares the packed B block (each thread packs its own A rows).
struct Plan {
  bool split_n = false;
  int64_t m_gran = 1;  // row granularity of the m split
  int64_t kc_max = 0;
  int64_t nkc = 0;
  int64_t nc_max = 0;
  int64_t mc_max = 0;
};

Plan make_plan(const SgemmKernels& K, const SgemmArgs& g, int nt) {
  Plan p;
  p.nkc = ceil_div(g.k, kKcMax);
  p.kc_max = ceil_div(g.k, p.nkc);
  p.nc_max = std::max<int64_t>(K.nr, kBBlockFloats / p.kc_max / K.nr * K.nr);
  p.mc_max = kMcMax / K.mr * K.mr;
  if (nt <= 1) return p;
  // Relative cost of the busiest thread (1.0 = perfect balance) for each split direction.
  const int64_t panels_m = ceil_div(g.m, K.mr);
  double rel_m;
  if (ceil_div(panels_m, nt) * K.mr * nt <= g.m + g.m / 32) {
    p.m_gran = K.mr;
    rel_m = static_cast<double>(ceil_div(panels_m, nt) * K.mr * nt) / static_cast<double>(g.m);
    if (rel_m < 1.0) rel_m = 1.0;
  } else {
    // Row-balanced split; each thread's last partial micro-tile costs about one extra row.
    p.m_gran = 1;
    const int64_t rows = ceil_div(g.m, nt);
    rel_m = static_cast<double>((rows + (rows % K.mr != 0 ? 1 : 0)) * nt) / static_cast<double>(g.m);
  }
  const int64_t units_n = ceil_div(g.n, K.n_gran);
  const double rel_n = static_cast<double>(ceil_div(units_n, nt) * nt) / static_cast<double>(units_n);
  if (units_n < nt) p.split_n = false;
  else if (g.m < nt) p.split_n = true;
  // With m >= n, the m split wins even at a slightly worse balance: the shared block is then the smaller B
  // and each thread packs its A rows one micro-panel at a time, straight into L1 (about +20% at 1000x256x784).
  else if (g.m >= g.n && rel_m <= rel_n * 1.03) p.split_n = false;
  else p.split_n = rel_n < rel_m || (rel_n == rel_m && g.n >= g.m);
  return p;
}

inline void team_barrier(int nt) {
  if (nt > 1) {
#pragma omp barrier
  }
}

// Scratch floats a thread needs for its private operand block under plan p.
int64_t private_floats(const SgemmKernels& K, const SgemmArgs& g, const Plan& p, int nt, int tid) {
  int64_t u0, u1;
  if (p.split_n) {
    split_range(ceil_div(g.n, K.n_gran), nt, tid, &u0, &u1);
    const int64_t span = std::min(std::min(g.n, u1 * K.n_gran) - std::min(g.n, u0 * K.n_gran), p.nc_max);
    return ceil_div(span, K.nr) * K.nr * p.kc_max;
  }
  // The m split packs A one micro-panel at a time (see sgemm_worker).
  return static_cast<int64_t>(K.mr) * p.kc_max;
}

// Body run by each of nt threads (or once with nt == 1 and no barriers, which is safe inside foreign parallel
// regions). All threads execute the same sequence of barriers regardless of how much work they own.
void sgemm_worker(const SgemmKernels& K, const SgemmArgs& g, const Plan& p, float* shared, float* priv, int nt,
                  int tid) {
  const int64_t mr = K.mr, nr = K.nr;
  if (p.split_n) {
    int64_t u0, u1;
    split_range(ceil_div(g.n, K.n_gran), nt, tid, &u0, &u1);
    const int64_t n0 = std::min(g.n, u0 * K.n_gran), n1 = std::min(g.n, u1 * K.n_gran);
    for (int64_t ic = 0; ic < g.m; ic += p.mc_max) {
      const int64_t mc = std::min(p.mc_max, g.m - ic);
      const int64_t panels = ceil_div(mc, mr);
      for (int64_t ik = 0; ik < p.nkc; ++ik) {
        const int64_t pc = ik * p.kc_max;
        const int64_t kc = std::min(p.kc_max, g.k - pc);
        int64_t q0, q1;
        split_range(panels, nt, tid, &q0, &q1);
        if (q1 > q0) {
          K.pack_a(g.ta, std::min(mc, q1 * mr) - q0 * mr, kc, g.a_at(ic + q0 * mr, pc), g.lda, shared + q0 * mr * kc);
        }
        team_barrier(nt);
        const float beta = ik == 0 ? g.beta : 1.0f;
        for (int64_t jc = n0; jc < n1; jc += p.nc_max) {
          const int64_t nc = std::min(p.nc_max, n1 - jc);
          K.pack_b(g.tb, kc, nc, g.b_at(pc, jc), g.ldb, priv);
          K.macro(mc, nc, kc, g.alpha, shared, priv, beta, g.c + ic * g.ldc + jc, g.ldc);
        }
        team_barrier(nt);
      }
    }
  } else {
    int64_t u0, u1;
    split_range(ceil_div(g.m, p.m_gran), nt, tid, &u0, &u1);
    const int64_t m0 = std::min(g.m, u0 * p.m_gran), m1 = std::min(g.m, u1 * p.m_gran);
    for (int64_t jc = 0; jc < g.n; jc += p.nc_max) {
      const int64_t nc = std::min(p.nc_max, g.n - jc);
      const int64_t panels = ceil_div(nc, nr);
      for (int64_t ik = 0; ik < p.nkc; ++ik) {
        const int64_t pc = ik * p.kc_max;
        const int64_t kc = std::min(p.kc_max, g.k - pc);
        int64_t q0, q1;
        split_range(panels, nt, tid, &q0, &q1);
        if (q1 > q0) {
          K.pack_b(g.tb, kc, std::min(nc, q1 * nr) - q0 * nr, g.b_at(pc, jc + q0 * nr), g.ldb, shared + q0 * nr * kc);
        }
        team_barrier(nt);
        const float beta = ik == 0 ? g.beta : 1.0f;
        for (int64_t ic = m0; ic < m1; ic += p.mc_max) {
          const int64_t mc = std::min(p.mc_max, m1 - ic);
          // One micro-panel at a time: the freshly packed A panel is consumed from L1 by all of nc.
          for (int64_t i0 = 0; i0 < mc; i0 += mr) {
            const int64_t rows = std::min(mr, mc - i0);
            K.pack_a(g.ta, rows, kc, g.a_at(ic + i0, pc), g.lda, priv);
            K.macro(rows, nc, kc, g.alpha, priv, shared, beta, g.c + (ic + i0) * g.ldc + jc, g.ldc);
          }
        }
        team_barrier(nt);
      }
    }
  }
}

// Returns false, with C untouched, if scratch memory could not be obtained.
bool sgemm_packed(const SgemmKernels& K, const SgemmArgs& g, int nthreads) {
  const Plan p = make_plan(K, g, nthreads);
  // Sized for either split so a team smaller than requested (which may re-plan) still fits.
  const int64_t a_block = ceil_div(std::min(g.m, p.mc_max), K.mr) * K.mr * p.kc_max;
  const int64_t b_block = ceil_div(std::min(g.n, p.nc_max), K.nr) * K.nr * p.kc_max;
  float* shared = tl_shared_pack.floats(std::max(a_block, b_block));
  if (shared == nullptr) return false;
  if (nthreads <= 1) {
    float* priv = tl_private_pack.floats(private_floats(K, g, p, 1, 0));
    if (priv == nullptr) return false;
    sgemm_worker(K, g, p, shared, priv, 1, 0);
    return true;
  }
  int failures = 0;
#pragma omp parallel num_threads(nthreads)
  {
    const int nt = omp_get_num_threads();
    const int tid = omp_get_thread_num();
    const Plan local = nt == nthreads ? p : make_plan(K, g, nt);
    float* priv = tl_private_pack.floats(private_floats(K, g, local, nt, tid));
    if (priv == nullptr) {
#pragma omp atomic
      ++failures;
    }
    // Every thread must know about an allocation failure before anyone writes C.
#pragma omp barrier
    int seen;
#pragma omp atomic read
    seen = failures;
    if (seen == 0) sgemm_worker(K, g, local, shared, priv, nt, tid);
  }
  return failures == 0;
}

template <typename T, typename BlockFn>
void portable_threaded(BlockFn block, bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                       int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, int nthreads) {
  if (nthreads <= 1) {
    block(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const bool split_n = n >= m;
#pragma omp parallel num_threads(nthreads)
  {
    const int nt = omp_get_num_threads();
    const int tid = omp_get_thread_num();
    int64_t s0, s1;
    if (split_n) {
      split_range(ceil_div(n, 8), nt, tid, &s0, &s1);
      s0 = std::min(n, s0 * 8);
      s1 = std::min(n, s1 * 8);
      if (s1 > s0) block(ta, tb, m, s1 - s0, k, alpha, a, lda, tb ? b + s0 * ldb : b + s0, ldb, beta, c + s0, ldc);
    } else {
      split_range(m, nt, tid, &s0, &s1);
      if (s1 > s0) block(ta, tb, s1 - s0, n, k, alpha, ta ? a + s0 : a + s0 * lda, lda, b, ldb, beta, c + s0 * ldc, ldc);
    }
  }
}

const SgemmKernels* kernels_for_active_level() {
  switch (active_simd_level()) {
    case SimdLevel::Avx512: return &detail::sgemm_kernels_avx512();
    case SimdLevel::Avx2: return &detail::sgemm_kernels_avx2();
    default: return nullptr;
  }
}

void sgemm_impl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int nthreads) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  const SgemmKernels* K = kernels_for_active_level();
  if (K != nullptr) {
    const SgemmArgs g{ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc};
    if (sgemm_packed(*K, g, nthreads)) return;
  }
  portable_threaded<float>(&detail::sgemm_portable_block, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                           nthreads);
}

void dgemm_impl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
                const double* b, int64_t ldb, double beta, double* c, int64_t ldc, int nthreads) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  portable_threaded<double>(&detail::dgemm_portable_block, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                            nthreads);
}

template <typename T, typename Impl>
void batched(Impl impl, bool ta, bool tb, int64_t batch, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
             int64_t lda, int64_t sa, const T* b, int64_t ldb, int64_t sb, T beta, T* c, int64_t ldc, int64_t sc) {
  if (batch <= 0) return;
  const int threads = (omp_in_parallel() || batch * m * n * k < kMinParallelWork) ? 1 : std::max(1, omp_get_max_threads());
  if (threads > 1 && batch >= threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < batch; ++i) {
      impl(ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta, c + i * sc, ldc, 1);
    }
    return;
  }
  const int per_product = thread_budget(m, n, k);
  for (int64_t i = 0; i < batch; ++i) {
    impl(ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta, c + i * sc, ldc, per_product);
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  sgemm_impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, thread_budget(m, n, k));
}

void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
           const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  dgemm_impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, thread_budget(m, n, k));
}

void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b,
                   float beta, float* c, int64_t ldc, int64_t stride_c) {
  batched<float>(&sgemm_impl, trans_a, trans_b, batch, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c,
                 ldc, stride_c);
}

void dgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, double alpha,
                   const double* a, int64_t lda, int64_t stride_a, const double* b, int64_t ldb, int64_t stride_b,
                   double beta, double* c, int64_t ldc, int64_t stride_c) {
  batched<double>(&dgemm_impl, trans_a, trans_b, batch, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c,
                  ldc, stride_c);
}

}  // namespace rk::cpu
