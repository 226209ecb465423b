// Correctness of rk::cpu::sgemm/dgemm (+ batched) against a double-accumulated reference, at every SIMD level.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/gemm.h"

namespace {

using rk::cpu::SimdLevel;

std::vector<SimdLevel> supported_levels() {
  std::vector<SimdLevel> out{SimdLevel::Portable};
  const SimdLevel d = rk::cpu::detected_simd_level();
  if (static_cast<int>(d) >= static_cast<int>(SimdLevel::Avx2)) out.push_back(SimdLevel::Avx2);
  if (d == SimdLevel::Avx512) out.push_back(SimdLevel::Avx512);
  return out;
}

// Restores the process-wide level so test order does not matter.
struct LevelGuard {
  SimdLevel saved = rk::cpu::active_simd_level();
  ~LevelGuard() { rk::cpu::set_simd_level(saved); }
};

template <typename T>
std::vector<T> random_vec(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> d(-1.0, 1.0);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(d(rng));
  return v;
}

template <typename T>
void reference(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const T* a, int64_t lda, const T* b,
               int64_t ldb, double beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = ta ? a[p * lda + i] : a[i * lda + p];
        const double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        s += av * bv;
      }
      const double old = beta == 0.0 ? 0.0 : beta * static_cast<double>(c[i * ldc + j]);
      c[i * ldc + j] = static_cast<T>(alpha * s + old);
    }
  }
}

template <typename T>
double tolerance(int64_t k) {
  const double eps = std::numeric_limits<T>::epsilon();
  return 4.0 * eps * (static_cast<double>(k) + 4.0);
}

struct Case {
  bool ta, tb;
  int64_t m, n, k;
  double alpha, beta;
  int64_t pad = 0;  // extra elements per row beyond the logical width (lda > k etc.)
};

template <typename T>
void run_case(const Case& cs, uint32_t seed) {
  const int64_t a_rows = cs.ta ? cs.k : cs.m, a_cols = cs.ta ? cs.m : cs.k;
  const int64_t b_rows = cs.tb ? cs.n : cs.k, b_cols = cs.tb ? cs.k : cs.n;
  const int64_t lda = a_cols + cs.pad, ldb = b_cols + cs.pad, ldc = cs.n + cs.pad;
  auto a = random_vec<T>(static_cast<size_t>(a_rows * lda), seed);
  auto b = random_vec<T>(static_cast<size_t>(b_rows * ldb), seed + 1);
  auto c = random_vec<T>(static_cast<size_t>(cs.m * ldc), seed + 2);
  if (cs.beta == 0.0) {
    for (auto& x : c) x = std::numeric_limits<T>::quiet_NaN();
  }
  auto want = c;
  reference<T>(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a.data(), lda, b.data(), ldb, cs.beta, want.data(), ldc);
  if constexpr (std::is_same_v<T, float>) {
    rk::cpu::sgemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, static_cast<float>(cs.alpha), a.data(), lda, b.data(), ldb,
                   static_cast<float>(cs.beta), c.data(), ldc);
  } else {
    rk::cpu::dgemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a.data(), lda, b.data(), ldb, cs.beta, c.data(), ldc);
  }
  const double tol = tolerance<T>(cs.k) * (std::abs(cs.alpha) + 1.0) + 4.0 * std::numeric_limits<T>::epsilon();
  int bad = 0;
  for (int64_t i = 0; i < cs.m && bad < 5; ++i) {
    for (int64_t j = 0; j < cs.n && bad < 5; ++j) {
      const double got = c[i * ldc + j], exp = want[i * ldc + j];
      if (!(std::abs(got - exp) <= tol * (1.0 + std::abs(exp)))) {
        ADD_FAILURE() << "C(" << i << "," << j << ") got " << got << " want " << exp << " [ta=" << cs.ta
                      << " tb=" << cs.tb << " m=" << cs.m << " n=" << cs.n << " k=" << cs.k << " alpha=" << cs.alpha
                      << " beta=" << cs.beta << " pad=" << cs.pad << "]";
        ++bad;
      }
    }
  }
  // Padding columns of C must never be written.
  if (cs.pad > 0 && cs.beta != 0.0) {
    for (int64_t i = 0; i < cs.m; ++i) {
      for (int64_t j = cs.n; j < ldc; ++j) ASSERT_EQ(c[i * ldc + j], want[i * ldc + j]) << "pad written";
    }
  }
}

template <typename T>
void sweep() {
  const int64_t sizes[] = {1, 7, 16, 33, 129};
  uint32_t seed = 1;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (int64_t m : sizes) {
        for (int64_t n : sizes) {
          for (int64_t k : {int64_t{1}, int64_t{7}, int64_t{33}, int64_t{129}}) {
            run_case<T>({ta, tb, m, n, k, 1.0, 0.0, 0}, seed++);
          }
        }
      }
      // Larger shapes cross the KC/MC/NC block boundaries and the threaded splits (both m- and n-split).
      run_case<T>({ta, tb, 257, 300, 785, 0.5, 0.25, 3}, seed++);
      run_case<T>({ta, tb, 128, 256, 784, 1.0, 1.0, 0}, seed++);
      run_case<T>({ta, tb, 784, 256, 128, -1.5, 0.0, 0}, seed++);
      run_case<T>({ta, tb, 128, 784, 256, 1.0, 0.0, 5}, seed++);
      run_case<T>({ta, tb, 1030, 530, 400, 1.0, -2.0, 1}, seed++);
      run_case<T>({ta, tb, 3, 2500, 50, 2.0, 0.5, 0}, seed++);
      run_case<T>({ta, tb, 2500, 3, 50, 2.0, 0.5, 0}, seed++);
      run_case<T>({ta, tb, 128, 10, 256, 1.0, 0.0, 0}, seed++);
    }
  }
}

class GemmLevels : public ::testing::TestWithParam<SimdLevel> {};

TEST_P(GemmLevels, SgemmAllTransposesAndEdges) {
  LevelGuard g;
  rk::cpu::set_simd_level(GetParam());
  ASSERT_EQ(rk::cpu::active_simd_level(), GetParam());
  sweep<float>();
}

TEST_P(GemmLevels, DgemmAllTransposesAndEdges) {
  LevelGuard g;
  rk::cpu::set_simd_level(GetParam());
  sweep<double>();
}

TEST_P(GemmLevels, AlphaBetaVariants) {
  LevelGuard g;
  rk::cpu::set_simd_level(GetParam());
  uint32_t seed = 1000;
  for (double alpha : {1.0, -1.0, 0.3, 0.0}) {
    for (double beta : {0.0, 1.0, -0.7}) {
      run_case<float>({false, true, 45, 67, 89, alpha, beta, 2}, seed++);
      run_case<double>({true, false, 45, 67, 89, alpha, beta, 2}, seed++);
    }
  }
}

TEST_P(GemmLevels, ZeroSizes) {
  LevelGuard g;
  rk::cpu::set_simd_level(GetParam());
  // k == 0 still applies beta; beta == 0 must clear NaN.
  std::vector<float> c(6, 3.0f);
  rk::cpu::sgemm(false, false, 2, 3, 0, 1.0f, nullptr, 1, nullptr, 3, 2.0f, c.data(), 3);
  for (float x : c) EXPECT_EQ(x, 6.0f);
  std::vector<float> cn(6, std::numeric_limits<float>::quiet_NaN());
  rk::cpu::sgemm(false, false, 2, 3, 0, 1.0f, nullptr, 1, nullptr, 3, 0.0f, cn.data(), 3);
  for (float x : cn) EXPECT_EQ(x, 0.0f);
  std::vector<double> cd(6, 1.0);
  rk::cpu::dgemm(true, true, 2, 3, 0, 1.0, nullptr, 2, nullptr, 1, 0.5, cd.data(), 3);
  for (double x : cd) EXPECT_EQ(x, 0.5);
  // m == 0 / n == 0 must not touch anything.
  rk::cpu::sgemm(false, false, 0, 3, 4, 1.0f, nullptr, 4, nullptr, 3, 0.0f, nullptr, 3);
  rk::cpu::sgemm(false, false, 3, 0, 4, 1.0f, nullptr, 4, nullptr, 1, 0.0f, nullptr, 1);
}

template <typename T>
void batched_case(bool ta, bool tb, int64_t batch, int64_t m, int64_t n, int64_t k, bool bcast_a, bool bcast_b,
                  double beta) {
  const int64_t a_cols = ta ? m : k, a_rows = ta ? k : m;
  const int64_t b_cols = tb ? k : n, b_rows = tb ? n : k;
  const int64_t sa = bcast_a ? 0 : a_rows * a_cols, sb = bcast_b ? 0 : b_rows * b_cols, sc = m * n;
  auto a = random_vec<T>(static_cast<size_t>(bcast_a ? sa + a_rows * a_cols : sa * batch), 7);
  auto b = random_vec<T>(static_cast<size_t>(bcast_b ? b_rows * b_cols : sb * batch), 8);
  auto c = random_vec<T>(static_cast<size_t>(sc * batch), 9);
  auto want = c;
  for (int64_t i = 0; i < batch; ++i) {
    reference<T>(ta, tb, m, n, k, 1.25, a.data() + i * sa, a_cols, b.data() + i * sb, b_cols, beta,
                 want.data() + i * sc, n);
  }
  if constexpr (std::is_same_v<T, float>) {
    rk::cpu::sgemm_batched(ta, tb, batch, m, n, k, 1.25f, a.data(), a_cols, sa, b.data(), b_cols, sb,
                           static_cast<float>(beta), c.data(), n, sc);
  } else {
    rk::cpu::dgemm_batched(ta, tb, batch, m, n, k, 1.25, a.data(), a_cols, sa, b.data(), b_cols, sb, beta, c.data(), n,
                           sc);
  }
  const double tol = tolerance<T>(k) * 3.0;
  for (size_t i = 0; i < c.size(); ++i) {
    ASSERT_NEAR(c[i], want[i], tol * (1.0 + std::abs(static_cast<double>(want[i])))) << "index " << i;
  }
}

TEST_P(GemmLevels, Batched) {
  LevelGuard g;
  rk::cpu::set_simd_level(GetParam());
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      batched_case<float>(ta, tb, 5, 17, 33, 40, false, false, 0.0);
      batched_case<float>(ta, tb, 4, 65, 70, 300, true, false, 1.0);    // broadcast A, per-product work is large
      batched_case<float>(ta, tb, 1, 200, 150, 129, false, true, 0.5);  // batch below thread count
      batched_case<double>(ta, tb, 3, 9, 31, 20, false, true, 0.0);
    }
  }
}

std::string level_name(const ::testing::TestParamInfo<SimdLevel>& info) {
  return rk::cpu::simd_level_name(info.param);
}

INSTANTIATE_TEST_SUITE_P(AllSupported, GemmLevels, ::testing::ValuesIn(supported_levels()), level_name);

TEST(GemmThreads, NestedInsideParallelRegion) {
  // Must run single-threaded (no orphaned barriers binding to the outer team) and still be correct.
  const int64_t m = 100, n = 90, k = 70;
  auto a = random_vec<float>(m * k, 1), b = random_vec<float>(k * n, 2);
  std::vector<float> want(m * n);
  reference<float>(false, false, m, n, k, 1.0, a.data(), k, b.data(), n, 0.0, want.data(), n);
  std::vector<std::vector<float>> outs(4, std::vector<float>(m * n));
#pragma omp parallel for num_threads(2)
  for (int t = 0; t < 4; ++t) {
    rk::cpu::sgemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, outs[t].data(), n);
  }
  for (const auto& o : outs) {
    for (size_t i = 0; i < o.size(); ++i) ASSERT_NEAR(o[i], want[i], 1e-4 * (1.0 + std::abs(want[i])));
  }
}

TEST(CpuFeatures, LevelClampAndNames) {
  LevelGuard g;
  rk::cpu::set_simd_level(SimdLevel::Avx512);
  EXPECT_LE(static_cast<int>(rk::cpu::active_simd_level()), static_cast<int>(rk::cpu::detected_simd_level()));
  rk::cpu::set_simd_level(SimdLevel::Portable);
  EXPECT_EQ(rk::cpu::active_simd_level(), SimdLevel::Portable);
  EXPECT_STREQ(rk::cpu::simd_level_name(SimdLevel::Portable), "portable");
  EXPECT_STREQ(rk::cpu::simd_level_name(SimdLevel::Avx2), "avx2");
  EXPECT_STREQ(rk::cpu::simd_level_name(SimdLevel::Avx512), "avx512");
}

}  // namespace
