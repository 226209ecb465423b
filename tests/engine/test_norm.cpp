// Engine tests of the fused batch-normalization ops (ops/norm.cpp, backend/cpu/norm.cpp): values
// against a naive float64 reference written here from the formula, for channels-last (inner = 1),
// channels-first (inner > 1) and a middle axis, float32 and float64, blocks large enough to run
// in parallel; float64 finite-difference gradchecks of both ops w.r.t. x, gamma and beta; errors.
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_util.h"

namespace {

using namespace rk;
using rk::testing::expect_values, rk::testing::gradcheck, rk::testing::make, rk::testing::rand, rk::testing::values;

// Naive batch norm of x (values, shape dims) over every axis but `ax`: y, mean, biased var.
struct Ref {
  std::vector<double> y, mean, var;
};
Ref reference(const std::vector<double>& x, const std::vector<int64_t>& dims, int ax, const std::vector<double>& gamma,
              const std::vector<double>& beta, double eps, const std::vector<double>* stats_mean = nullptr,
              const std::vector<double>* stats_var = nullptr) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < ax; ++i) outer *= dims[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(ax) + 1; i < dims.size(); ++i) inner *= dims[i];
  const int64_t c = dims[static_cast<size_t>(ax)];
  Ref r;
  r.mean.assign(static_cast<size_t>(c), 0.0);
  r.var.assign(static_cast<size_t>(c), 0.0);
  auto at = [&](int64_t o, int64_t k, int64_t i) { return static_cast<size_t>((o * c + k) * inner + i); };
  for (int64_t k = 0; k < c; ++k) {
    double s = 0;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) s += x[at(o, k, i)];
    const double mu = s / static_cast<double>(outer * inner);
    double q = 0;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) q += (x[at(o, k, i)] - mu) * (x[at(o, k, i)] - mu);
    r.mean[static_cast<size_t>(k)] = mu;
    r.var[static_cast<size_t>(k)] = q / static_cast<double>(outer * inner);
  }
  const std::vector<double>& m = stats_mean ? *stats_mean : r.mean;
  const std::vector<double>& v = stats_var ? *stats_var : r.var;
  r.y.assign(x.size(), 0.0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t i = 0; i < inner; ++i) {
        const size_t kk = static_cast<size_t>(k);
        r.y[at(o, k, i)] = (x[at(o, k, i)] - m[kk]) / std::sqrt(v[kk] + eps) * gamma[kk] + beta[kk];
      }
  return r;
}

Tensor as(const Tensor& t, DType dt) { return ops::cast(t, dt); }

struct Case {
  std::vector<int64_t> dims;
  int axis;
};

// Shapes: channels-last (inner = 1), channels-first (inner > 1), a middle axis, and two large enough
// (> 32768 elements) for the parallel path, one with rows longer than a block (channel blocks).
const std::vector<Case> kCases = {{{6, 5}, 1},          {{4, 3, 7}, 1},        {{2, 3, 4, 5}, 2},
                                  {{64, 12, 12, 8}, 3}, {{8, 16, 24, 24}, 1},  {{2, 3, 9000}, 1},
                                  {{3, 20000, 1}, 1}};

TEST(BatchNormOp, TrainingMatchesNaiveReference) {
  for (DType dt : {DType::Float64, DType::Float32}) {
    for (const Case& cs : kCases) {
      const Shape s(cs.dims);
      const int64_t c = cs.dims[static_cast<size_t>(cs.axis)];
      // An offset far from zero checks the variance for cancellation.
      Tensor x = as(rand(s, 95, 105, 3), dt), gamma = as(rand(Shape({c}), 0.5, 2, 4), dt);
      Tensor beta = as(rand(Shape({c}), -1, 1, 5), dt);
      const Ref r = reference(values(x), cs.dims, cs.axis, values(gamma), values(beta), 1e-3);
      ops::BatchNormResult out = ops::batch_norm_training(x, gamma, beta, cs.axis, 1e-3);
      const double tol = dt == DType::Float64 ? 1e-9 : 2e-5;
      SCOPED_TRACE(s.str() + " axis " + std::to_string(cs.axis) + " " + dtype_name(dt));
      EXPECT_EQ(out.y.shape(), s);
      EXPECT_EQ(out.y.dtype(), dt);
      expect_values(out.mean, r.mean, tol, tol);
      expect_values(out.var, r.var, tol, 1e-4);
      expect_values(out.y, r.y, 20 * tol, tol);
    }
  }
}

TEST(BatchNormOp, InferenceMatchesNaiveReference) {
  for (DType dt : {DType::Float64, DType::Float32}) {
    for (const Case& cs : kCases) {
      const Shape s(cs.dims);
      const int64_t c = cs.dims[static_cast<size_t>(cs.axis)];
      Tensor x = as(rand(s, -3, 3, 6), dt), gamma = as(rand(Shape({c}), 0.5, 2, 7), dt);
      Tensor beta = as(rand(Shape({c}), -1, 1, 8), dt), mean = as(rand(Shape({c}), -1, 1, 9), dt);
      Tensor var = as(rand(Shape({c}), 0.1, 3, 10), dt);
      const std::vector<double> mv = values(mean), vv = values(var);
      const Ref r = reference(values(x), cs.dims, cs.axis, values(gamma), values(beta), 1e-2, &mv, &vv);
      SCOPED_TRACE(s.str() + " axis " + std::to_string(cs.axis) + " " + dtype_name(dt));
      expect_values(ops::batch_norm_inference(x, gamma, beta, mean, var, cs.axis, 1e-2), r.y,
                    dt == DType::Float64 ? 1e-12 : 1e-5, 1e-6);
    }
  }
}

TEST(BatchNormOp, AbsentGammaBetaAreOneAndZeroAndNegativeAxisCounts) {
  Tensor x = rand(Shape({5, 2, 3}), -2, 2, 11);
  const std::vector<double> ones = {1, 1, 1}, zeros = {0, 0, 0};
  const Ref r = reference(values(x), {5, 2, 3}, 2, ones, zeros, 0.0);
  ops::BatchNormResult out = ops::batch_norm_training(x, Tensor(), Tensor(), -1, 0.0);
  expect_values(out.y, r.y, 1e-12);
  expect_values(out.mean, r.mean, 1e-12);
  expect_values(out.var, r.var, 1e-12);
}

TEST(BatchNormOp, EmptyInputs) {
  // No values per channel: the statistics are 0 / 0 (NaN), as the composed mean would give.
  ops::BatchNormResult r = ops::batch_norm_training(Tensor::empty(Shape({0, 3}), DType::Float64), Tensor(), Tensor(),
                                                    -1, 1e-3);
  EXPECT_EQ(r.y.shape(), Shape({0, 3}));
  EXPECT_TRUE(std::isnan(values(r.mean)[0]));
  // No channels: nothing to compute.
  EXPECT_EQ(ops::batch_norm_training(Tensor::empty(Shape({4, 0}), DType::Float64), Tensor(), Tensor(), -1, 1e-3)
                .y.shape(),
            Shape({4, 0}));
}

TEST(BatchNormOp, TrainingGradcheckChannelsLast) {
  gradcheck([](const std::vector<Tensor>& in) { return ops::batch_norm_training(in[0], in[1], in[2], -1, 1e-3).y; },
            {rand(Shape({4, 3, 3}), -2, 2, 21), rand(Shape({3}), 0.5, 1.5, 22), rand(Shape({3}), -1, 1, 23)});
}

TEST(BatchNormOp, TrainingGradcheckChannelsFirst) {
  gradcheck([](const std::vector<Tensor>& in) { return ops::batch_norm_training(in[0], in[1], in[2], 1, 1e-3).y; },
            {rand(Shape({3, 2, 2, 3}), -2, 2, 24), rand(Shape({2}), 0.5, 1.5, 25), rand(Shape({2}), -1, 1, 26)});
}

TEST(BatchNormOp, TrainingGradcheckWithoutGammaBeta) {
  gradcheck([](const std::vector<Tensor>& in) { return ops::batch_norm_training(in[0], Tensor(), Tensor(), 1, 0.0).y; },
            {rand(Shape({3, 4, 2}), -2, 2, 27)});
}

TEST(BatchNormOp, InferenceGradcheck) {
  const Tensor mean = rand(Shape({3}), -1, 1, 31), var = rand(Shape({3}), 0.2, 2, 32);
  gradcheck(
      [&](const std::vector<Tensor>& in) { return ops::batch_norm_inference(in[0], in[1], in[2], mean, var, 1, 1e-3); },
      {rand(Shape({2, 3, 4}), -2, 2, 33), rand(Shape({3}), 0.5, 1.5, 34), rand(Shape({3}), -1, 1, 35)});
}

TEST(BatchNormOp, GradientOnlyWhereAsked) {
  // gamma needs a gradient, x does not (the first layer of a model): gx is never formed.
  Tensor x = rand(Shape({4, 2}), -2, 2, 41), gamma = rand(Shape({2}), 0.5, 1.5, 42);
  gamma.set_requires_grad(true);
  Tensor y = ops::batch_norm_training(x, gamma, Tensor(), -1, 1e-3).y;
  autograd::backward(ops::sum(ops::multiply(y, y)));
  ASSERT_TRUE(autograd::grad(gamma).defined());
  // d/dgamma sum((gamma xhat)^2) = 2 gamma sum(xhat^2) = 2 gamma m var / (var + eps)
  const Ref r = reference(values(x), {4, 2}, 1, {1, 1}, {0, 0}, 1e-3);
  const std::vector<double> g = values(gamma);
  expect_values(autograd::grad(gamma),
                {2 * g[0] * 4 * r.var[0] / (r.var[0] + 1e-3), 2 * g[1] * 4 * r.var[1] / (r.var[1] + 1e-3)}, 1e-10);
  EXPECT_FALSE(autograd::grad(x).defined());
}

TEST(BatchNormOp, BadArgumentsAreClassedErrors) {
  Tensor x = rand(Shape({4, 3}));
  EXPECT_THROW(ops::batch_norm_training(x, rand(Shape({2})), Tensor(), -1, 1e-3), ShapeError);
  EXPECT_THROW(ops::batch_norm_training(x, Tensor(), Tensor(), 2, 1e-3), IndexError);
  EXPECT_THROW(ops::batch_norm_training(x, Tensor(), Tensor(), -1, -1.0), ValueError);
  EXPECT_THROW(ops::batch_norm_training(make(Shape({2}), {1, 2}, DType::Int32), Tensor(), Tensor(), 0, 1e-3),
               TypeError);
  EXPECT_THROW(ops::batch_norm_inference(x, Tensor(), Tensor(), rand(Shape({3})), rand(Shape({4})), -1, 1e-3),
               ShapeError);
  try {
    ops::batch_norm_training(x, rand(Shape({2})), Tensor(), -1, 1e-3);
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("gamma (2,) must hold one value per channel (3) of input (4, 3)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
