// matmul (NumPy semantics) and the backend gemm entry point, against naive loops; every
// transpose combination, 1-D promotion, batch broadcasting, and float64 gradchecks.
#include <string>

#include "backend/backend.h"
#include "test_util.h"

namespace {

using namespace rk;
using rk::testing::expect_values, rk::testing::gradcheck, rk::testing::make, rk::testing::rand, rk::testing::seq,
    rk::testing::values;

// NumPy matmul by loops: shapes a [..., m, k] and b [..., k, n] (both at least 2-D), batch broadcast.
std::vector<double> naive_matmul(const std::vector<double>& a, const std::vector<int64_t>& ad,
                                 const std::vector<double>& b, const std::vector<int64_t>& bd,
                                 std::vector<int64_t>* out_dims) {
  size_t ra = ad.size(), rb = bd.size(), r = std::max(ra, rb);
  int64_t m = ad[ra - 2], k = ad[ra - 1], n = bd[rb - 1];
  std::vector<int64_t> pa(r - 2, 1), pb(r - 2, 1), bs(r - 2);
  for (size_t i = 0; i + 2 < ra; ++i) pa[r - ra + i] = ad[i];
  for (size_t i = 0; i + 2 < rb; ++i) pb[r - rb + i] = bd[i];
  int64_t nb = 1;
  for (size_t i = 0; i + 2 < r; ++i) {
    bs[i] = std::max(pa[i], pb[i]);
    nb *= bs[i];
  }
  *out_dims = bs;
  out_dims->push_back(m);
  out_dims->push_back(n);
  std::vector<double> out(static_cast<size_t>(nb * m * n));
  for (int64_t t = 0; t < nb; ++t) {
    // Decompose t over bs and map to each operand's batch index (size-1 dims broadcast).
    int64_t rem = t, ia = 0, ib = 0, sa = 1, sb = 1;
    for (int i = static_cast<int>(bs.size()) - 1; i >= 0; --i) {
      int64_t idx = rem % bs[static_cast<size_t>(i)];
      rem /= bs[static_cast<size_t>(i)];
      ia += (pa[static_cast<size_t>(i)] == 1 ? 0 : idx) * sa;
      ib += (pb[static_cast<size_t>(i)] == 1 ? 0 : idx) * sb;
      sa *= pa[static_cast<size_t>(i)];
      sb *= pb[static_cast<size_t>(i)];
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p)
          s += a[static_cast<size_t>(ia * m * k + i * k + p)] * b[static_cast<size_t>(ib * k * n + p * n + j)];
        out[static_cast<size_t>(t * m * n + i * n + j)] = s;
      }
  }
  return out;
}

void check_matmul(const std::vector<int64_t>& ad, const std::vector<int64_t>& bd, DType dt) {
  Shape as(ad), bs(bd);
  std::vector<double> av = seq(as.numel(), -1, 1, 1), bv = seq(bs.numel(), -1, 1, 2);
  Tensor c = ops::matmul(make(as, av, dt), make(bs, bv, dt));
  // Reference on promoted shapes, then drop the promoted axes as NumPy does.
  std::vector<int64_t> pad = ad, pbd = bd, od;
  if (ad.size() == 1) pad.insert(pad.begin(), 1);
  if (bd.size() == 1) pbd.push_back(1);
  std::vector<double> want = naive_matmul(av, pad, bv, pbd, &od);
  if (ad.size() == 1) od.erase(od.end() - 2);
  if (bd.size() == 1) od.pop_back();
  SCOPED_TRACE(as.str() + " @ " + bs.str());
  EXPECT_EQ(c.shape(), Shape(od));
  EXPECT_EQ(c.dtype(), dt);
  double tol = dt == DType::Float32 ? 1e-5 : 1e-12;
  expect_values(c, want, tol, tol);
}

TEST(Matmul, HandComputed) {
  Tensor a = make({2, 3}, {1, 2, 3, 4, 5, 6}), b = make({3, 2}, {7, 8, 9, 10, 11, 12});
  expect_values(ops::matmul(a, b), {58, 64, 139, 154});
  expect_values(ops::matmul(make({3}, {1, 2, 3}), make({3}, {4, 5, 6})), {32});
  EXPECT_EQ(ops::matmul(make({3}, {1, 2, 3}), make({3}, {4, 5, 6})).rank(), 0);
  expect_values(ops::matmul(make({2}, {1, 1}), a), {5, 7, 9});
  expect_values(ops::matmul(a, make({3}, {1, 0, -1})), {-2, -2});
}

TEST(Matmul, AgainstNaiveLoops) {
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> cases = {
      {{5, 7}, {7, 3}},          {{1, 1}, {1, 1}},          {{7}, {7, 4}},        {{4, 7}, {7}},
      {{7}, {7}},                {{3, 5, 7}, {3, 7, 2}},    {{3, 5, 7}, {7, 2}},  {{5, 7}, {3, 7, 2}},
      {{2, 1, 4, 3}, {5, 3, 2}}, {{1, 2, 4, 3}, {3, 1, 3, 2}}, {{3}, {2, 3, 4}},   {{2, 4, 3}, {3}},
      {{1, 4, 3}, {2, 3, 5}},    {{2, 2, 4, 3}, {1, 3, 5}}, {{64, 65}, {65, 66}}, {{3, 40, 30}, {30, 50}},
  };
  for (DType dt : {DType::Float64, DType::Float32})
    for (const auto& c : cases) check_matmul(c.first, c.second, dt);
}

TEST(Matmul, MixedDtypesPromoteAndEmptyShapesWork) {
  Tensor c = ops::matmul(make({2, 2}, {1, 2, 3, 4}, DType::Float32), make({2, 2}, {1, 0, 0, 1}, DType::Float64));
  EXPECT_EQ(c.dtype(), DType::Float64);
  expect_values(c, {1, 2, 3, 4});
  EXPECT_EQ(ops::matmul(Tensor::empty({0, 3}), Tensor::empty({3, 4})).shape(), Shape({0, 4}));
  // k == 0: an empty sum is zero.
  expect_values(ops::matmul(Tensor::empty({2, 0}, DType::Float64), Tensor::empty({0, 2}, DType::Float64)),
                {0, 0, 0, 0});
  EXPECT_EQ(ops::matmul(Tensor::empty({0, 2, 3}), Tensor::empty({3, 4})).shape(), Shape({0, 2, 4}));
}

TEST(Matmul, Errors) {
  try {
    ops::matmul(Tensor::empty({2, 3}), Tensor::empty({4, 5}));
    ADD_FAILURE() << "no exception";
  } catch (const ShapeError& e) {
    EXPECT_EQ(std::string(e.what()), "matmul: shapes (2, 3) and (4, 5) are incompatible: inner dimensions 3 and 4 differ");
  }
  EXPECT_THROW(ops::matmul(Tensor::empty({2, 2, 3}), Tensor::empty({3, 3, 4})), ShapeError);
  EXPECT_THROW(ops::matmul(Tensor::empty({}), Tensor::empty({3})), ShapeError);
  EXPECT_THROW(ops::matmul(Tensor::empty({3}), Tensor::empty({4})), ShapeError);
  EXPECT_THROW(ops::matmul(make({2, 2}, {1, 2, 3, 4}, DType::Int32), make({2, 2}, {1, 2, 3, 4}, DType::Int32)),
               TypeError);
}

TEST(BackendGemm, EveryTransposeAlphaBetaAndStride) {
  Backend& be = backend_for(cpu_device());
  const int64_t batch = 3, m = 4, n = 5, k = 6;
  for (DType dt : {DType::Float64, DType::Float32})
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (int64_t sa_mul : {0, 1})
          for (int64_t sb_mul : {0, 1}) {
            // Stored A is [k, m] when transposed, B is [n, k] when transposed.
            std::vector<double> av = seq(batch * m * k, -1, 1, 3), bv = seq(batch * k * n, -1, 1, 4),
                                cv = seq(batch * m * n, -1, 1, 5);
            Tensor A = make({batch * m * k}, av, dt), B = make({batch * k * n}, bv, dt),
                   C = make({batch * m * n}, cv, dt);
            int64_t sa = sa_mul * m * k, sb = sb_mul * k * n;
            be.gemm(ta, tb, batch, m, n, k, 0.5, A, sa, B, sb, -2.0, C, m * n);
            std::vector<double> want(cv.size());
            for (int64_t t = 0; t < batch; ++t)
              for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j) {
                  double s = 0;
                  for (int64_t p = 0; p < k; ++p) {
                    double x = ta ? av[static_cast<size_t>(t * sa + p * m + i)] : av[static_cast<size_t>(t * sa + i * k + p)];
                    double y = tb ? bv[static_cast<size_t>(t * sb + j * k + p)] : bv[static_cast<size_t>(t * sb + p * n + j)];
                    if (dt == DType::Float32) {
                      x = static_cast<float>(x);
                      y = static_cast<float>(y);
                    }
                    s += x * y;
                  }
                  size_t ci = static_cast<size_t>(t * m * n + i * n + j);
                  double c0 = dt == DType::Float32 ? static_cast<float>(cv[ci]) : cv[ci];
                  want[ci] = 0.5 * s - 2.0 * c0;
                }
            SCOPED_TRACE("ta " + std::to_string(ta) + " tb " + std::to_string(tb) + " sa " + std::to_string(sa) +
                         " sb " + std::to_string(sb));
            double tol = dt == DType::Float32 ? 1e-5 : 1e-12;
            expect_values(C, want, tol, tol);
          }
  Tensor i32 = Tensor::empty({4}, DType::Int32);
  EXPECT_THROW(be.gemm(false, false, 1, 2, 2, 1, 1.0, i32, 0, i32, 0, 0.0, i32, 0), TypeError);
  Tensor f = Tensor::empty({4}, DType::Float32), d = Tensor::empty({4}, DType::Float64);
  EXPECT_THROW(be.gemm(false, false, 1, 2, 2, 1, 1.0, f, 0, d, 0, 0.0, f, 0), TypeError);
}

TEST(MatmulGrad, AllShapeCases) {
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> cases = {
      {{3, 4}, {4, 2}},          {{4}, {4, 2}},          {{3, 4}, {4}},     {{4}, {4}},
      {{2, 3, 4}, {2, 4, 5}},    {{2, 3, 4}, {4, 5}},    {{3, 4}, {2, 4, 5}}, {{2, 1, 3, 4}, {3, 4, 2}},
      {{1, 2, 3, 4}, {3, 1, 4, 2}}, {{4}, {2, 4, 3}},    {{2, 3, 4}, {4}},  {{1, 3, 4}, {2, 4, 2}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(Shape(c.first).str() + " @ " + Shape(c.second).str());
    gradcheck([](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); },
              {rand(Shape(c.first), -1, 1, 7), rand(Shape(c.second), -1, 1, 8)});
  }
}

TEST(MatmulGrad, OnlyOneSideNeedsGrad) {
  Tensor w = rand({4, 3}, -1, 1, 9);
  gradcheck([&](const std::vector<Tensor>& in) { return ops::matmul(in[0], w); }, {rand({2, 5, 4})});
  Tensor x = rand({2, 5, 4}, -1, 1, 10);
  gradcheck([&](const std::vector<Tensor>& in) { return ops::matmul(x, in[0]); }, {rand({4, 3})});
  // Float32 inputs promoted by a float64 weight still send float32 gradients back.
  Tensor a = make({2, 2}, {1, 2, 3, 4}, DType::Float32), b = make({2, 2}, {1, 0, 0, 1});
  a.set_requires_grad(true);
  autograd::backward(ops::sum(ops::matmul(a, b)));
  EXPECT_EQ(autograd::grad(a).dtype(), DType::Float32);
  expect_values(autograd::grad(a), {1, 1, 1, 1});
}

}  // namespace
