// Reductions (sum, mean, max, min, prod, logsumexp, argmax/argmin): values against a naive
// reference over every axis subset, keepdims and negative axes, dtype rules, NaN handling,
// and float64 gradchecks (ties for max/min, zeros for prod).
#include <cmath>
#include <limits>

#include "backend/backend.h"
#include "test_util.h"

namespace {

using namespace rk;
using rk::testing::expect_values, rk::testing::gradcheck, rk::testing::make, rk::testing::rand, rk::testing::values;

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// Naive reference: reduce `v` (shape dims) over the axes in `mask`, row-major over kept axes.
std::vector<double> ref_reduce(ReduceOp op, const std::vector<double>& v, const std::vector<int64_t>& dims,
                               const std::vector<bool>& mask) {
  int r = static_cast<int>(dims.size());
  std::vector<int64_t> kept;
  for (int i = 0; i < r; ++i)
    if (!mask[i]) kept.push_back(dims[i]);
  int64_t nout = 1;
  for (int64_t d : kept) nout *= d;
  std::vector<std::vector<double>> groups(static_cast<size_t>(nout));
  std::vector<int64_t> idx(dims.size(), 0);
  for (size_t flat = 0; flat < v.size(); ++flat) {
    int64_t o = 0;
    for (int i = 0; i < r; ++i)
      if (!mask[i]) o = o * dims[i] + idx[i];
    groups[static_cast<size_t>(o)].push_back(v[flat]);
    for (int i = r - 1; i >= 0; --i) {
      if (++idx[i] < dims[i]) break;
      idx[i] = 0;
    }
  }
  std::vector<double> out;
  for (auto& g : groups) {
    double acc = 0;
    switch (op) {
      case ReduceOp::Sum: for (double x : g) acc += x; break;
      case ReduceOp::Mean: for (double x : g) acc += x; acc /= static_cast<double>(g.size()); break;
      case ReduceOp::Max: acc = -kInf; for (double x : g) acc = std::max(acc, x); break;
      case ReduceOp::Min: acc = kInf; for (double x : g) acc = std::min(acc, x); break;
      case ReduceOp::Prod: acc = 1; for (double x : g) acc *= x; break;
      case ReduceOp::LogSumExp: {
        double m = -kInf;
        for (double x : g) m = std::max(m, x);
        for (double x : g) acc += std::exp(x - m);
        acc = m + std::log(acc);
        break;
      }
    }
    out.push_back(acc);
  }
  return out;
}

// Like expect_values, but infinities must match exactly (inf - inf is NaN, so tolerances cannot).
void expect_with_inf(const Tensor& t, const std::vector<double>& expected) {
  std::vector<double> got = values(t);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(expected[i])) EXPECT_TRUE(std::isnan(got[i])) << "at " << i;
    else if (std::isinf(expected[i])) EXPECT_EQ(got[i], expected[i]) << "at " << i;
    else EXPECT_NEAR(got[i], expected[i], 1e-9 * (1 + std::fabs(expected[i]))) << "at " << i;
  }
}

Tensor call(ReduceOp op, const Tensor& x, const std::vector<int>& axes, bool keepdims) {
  switch (op) {
    case ReduceOp::Sum: return ops::sum(x, axes, keepdims);
    case ReduceOp::Mean: return ops::mean(x, axes, keepdims);
    case ReduceOp::Max: return ops::max(x, axes, keepdims);
    case ReduceOp::Min: return ops::min(x, axes, keepdims);
    case ReduceOp::Prod: return ops::prod(x, axes, keepdims);
    case ReduceOp::LogSumExp: return ops::logsumexp(x, axes, keepdims);
  }
  return Tensor();
}

const ReduceOp kAllOps[] = {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max,
                            ReduceOp::Min, ReduceOp::Prod, ReduceOp::LogSumExp};

TEST(Reduce, HandComputedValues) {
  Tensor x = make({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_values(ops::sum(x), {21});
  EXPECT_EQ(ops::sum(x).rank(), 0);
  expect_values(ops::sum(x, {0}), {5, 7, 9});
  expect_values(ops::sum(x, {1}), {6, 15});
  expect_values(ops::mean(x, {1}), {2, 5});
  expect_values(ops::mean(x), {3.5});
  expect_values(ops::max(x, {0}), {4, 5, 6});
  expect_values(ops::min(x, {1}), {1, 4});
  expect_values(ops::prod(x, {1}), {6, 120});
  expect_values(ops::prod(x), {720});
  expect_values(ops::logsumexp(x, {1}), {3 + std::log(1 + std::exp(-1.0) + std::exp(-2.0)),
                                         6 + std::log(1 + std::exp(-1.0) + std::exp(-2.0))});
  Tensor k = ops::sum(x, {-1}, true);
  EXPECT_EQ(k.shape(), Shape({2, 1}));
  expect_values(k, {6, 15});
  EXPECT_EQ(ops::mean(x, {0, 1}, true).shape(), Shape({1, 1}));
  // Duplicate axes (here 1 and -1) are reduced once.
  expect_values(ops::sum(x, {1, -1}), {6, 15});
}

TEST(Reduce, EveryAxisSubsetOfRank4MatchesReference) {
  const std::vector<int64_t> dims{2, 3, 1, 4};
  for (DType dt : {DType::Float64, DType::Float32}) {
    std::vector<double> v = rk::testing::seq(24, 0.5, 1.5, 7);
    Tensor x = make(Shape(dims), v, dt);
    for (int maskbits = 1; maskbits < 16; ++maskbits) {
      std::vector<int> axes, neg_axes;
      std::vector<bool> mask(4);
      for (int i = 0; i < 4; ++i)
        if (maskbits & (1 << i)) {
          mask[i] = true;
          axes.push_back(i);
          neg_axes.push_back(i - 4);
        }
      for (ReduceOp op : kAllOps) {
        std::vector<double> expected = ref_reduce(op, v, dims, mask);
        double tol = dt == DType::Float32 ? 1e-5 : 1e-12;
        for (bool keep : {false, true}) {
          Tensor y = call(op, x, axes, keep);
          EXPECT_EQ(y.dtype(), dt);
          EXPECT_EQ(y.shape(), reduced_shape(x.shape(), axes, keep));
          SCOPED_TRACE("mask " + std::to_string(maskbits) + " op " + std::to_string(static_cast<int>(op)));
          expect_values(y, expected, tol, tol);
          expect_values(call(op, x, neg_axes, keep), expected, tol, tol);
        }
      }
    }
  }
}

TEST(Reduce, NonContiguousAxesUseTheGeneralPath) {
  // Axes {0, 2} of (3, 4, 5, 2): reduced groups separated by a kept one.
  std::vector<int64_t> dims{3, 4, 5, 2};
  std::vector<double> v = rk::testing::seq(120, -1, 1, 3);
  Tensor x = make(Shape(dims), v);
  for (ReduceOp op : kAllOps) {
    expect_values(call(op, x, {0, 2}, false), ref_reduce(op, v, dims, {true, false, true, false}), 1e-12, 1e-12);
    expect_values(call(op, x, {1, 3}, true), ref_reduce(op, v, dims, {false, true, false, true}), 1e-12, 1e-12);
    expect_values(call(op, x, {0, 1, 3}, false), ref_reduce(op, v, dims, {true, true, false, true}), 1e-12, 1e-12);
  }
}

TEST(Reduce, LargeInputsTakeTheParallelPaths) {
  // One long row (blocked partial sums), many rows, and a wide inner block.
  std::vector<double> v = rk::testing::seq(100000, 0, 1, 11);
  Tensor x = make({100000}, v, DType::Float32);
  double s = 0;
  for (double e : v) s += static_cast<float>(e);
  expect_values(ops::sum(x), {s}, 1e-3, 1e-7);  // float32 accumulates in double
  expect_values(ops::mean(x), {s / 100000}, 1e-6, 1e-6);
  Tensor x2 = make({400, 250}, v, DType::Float64);
  expect_values(ops::sum(x2, {0}), ref_reduce(ReduceOp::Sum, v, {400, 250}, {true, false}), 1e-9, 1e-12);
  expect_values(ops::max(x2, {1}), ref_reduce(ReduceOp::Max, v, {400, 250}, {false, true}));
  expect_values(ops::logsumexp(x2, {0}), ref_reduce(ReduceOp::LogSumExp, v, {400, 250}, {true, false}), 1e-9,
                1e-12);
}

TEST(Reduce, FloatSumIsAccurate) {
  // 2^24 + many ones: a float accumulator would stall at 16777216.
  std::vector<double> v(20001, 1.0);
  v[0] = 16777216.0;
  Tensor x = make({20001}, v, DType::Float32);
  EXPECT_EQ(ops::sum(x).item(), 16797216.0);
}

TEST(Reduce, NaNPropagatesAndInfinitiesAreHandled) {
  Tensor x = make({2, 3}, {1, kNaN, 3, -kInf, -kInf, -kInf});
  expect_with_inf(ops::max(x, {1}), {kNaN, -kInf});
  expect_with_inf(ops::min(x, {1}), {kNaN, -kInf});
  expect_with_inf(ops::sum(x, {1}), {kNaN, -kInf});
  expect_with_inf(ops::logsumexp(x, {1}), {kNaN, -kInf});
  Tensor y = make({2, 2}, {kNaN, 1, 2, 1}, DType::Float32);
  expect_with_inf(ops::max(y, {0}), {kNaN, 1});
  Tensor big = make({3}, {1000, 1000, kInf});
  expect_with_inf(ops::logsumexp(big), {kInf});
  expect_with_inf(ops::logsumexp(make({2}, {1000, 1000})), {1000 + std::log(2.0)});
}

TEST(Reduce, IntegerAndBoolDtypes) {
  Tensor xi = make({2, 3}, {1, -2, 3, 4, 5, 6}, DType::Int32);
  Tensor s = ops::sum(xi, {1});
  EXPECT_EQ(s.dtype(), DType::Int32);
  expect_values(s, {2, 15});
  EXPECT_EQ(ops::max(xi).dtype(), DType::Int32);
  expect_values(ops::max(xi), {6});
  expect_values(ops::min(xi, {0}), {1, -2, 3});
  expect_values(ops::prod(xi, {1}), {-6, 120});
  Tensor m = ops::mean(xi, {0});
  EXPECT_EQ(m.dtype(), DType::Float32);
  expect_values(m, {2.5, 1.5, 4.5});
  Tensor xb = make({2, 3}, {1, 0, 1, 1, 1, 1}, DType::Bool);
  Tensor sb = ops::sum(xb, {1});
  EXPECT_EQ(sb.dtype(), DType::Int32);
  expect_values(sb, {2, 3});
  expect_values(ops::sum(xb), {5});
  expect_values(ops::mean(xb), {5.0 / 6.0});
  expect_values(ops::min(xb, {1}), {0, 1});
  Tensor lse = ops::logsumexp(xi, {1});
  EXPECT_EQ(lse.dtype(), DType::Float32);
}

TEST(Reduce, ScalarsAndEmptyTensors) {
  Tensor s = make({}, {2.5});
  expect_values(ops::sum(s), {2.5});
  expect_values(ops::max(s), {2.5});
  expect_values(ops::logsumexp(s), {2.5});
  Tensor e = Tensor::empty({0, 3}, DType::Float64);
  expect_values(ops::sum(e, {0}), {0, 0, 0});
  expect_values(ops::prod(e, {0}), {1, 1, 1});
  expect_with_inf(ops::max(e, {0}), {-kInf, -kInf, -kInf});
  expect_with_inf(ops::min(e, {0}), {kInf, kInf, kInf});
  expect_with_inf(ops::mean(e, {0}), {kNaN, kNaN, kNaN});
  EXPECT_EQ(ops::sum(e, {1}).shape(), Shape({0}));
}

TEST(Reduce, BadAxesThrowIndexError) {
  Tensor x = make({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_THROW(ops::sum(x, {2}), IndexError);
  EXPECT_THROW(ops::mean(x, {-3}), IndexError);
  EXPECT_THROW(ops::argmax(x, 5), IndexError);
  EXPECT_THROW(ops::argmax(Tensor::empty({0, 2}, DType::Float64), 0), ValueError);
}

TEST(Reduce, ArgMaxArgMin) {
  Tensor x = make({2, 4}, {3, 7, 7, 1, 2, 2, 0, 0});
  Tensor a = ops::argmax(x, 1);
  EXPECT_EQ(a.dtype(), DType::Int32);
  expect_values(a, {1, 0});  // first occurrence wins
  expect_values(ops::argmin(x, -1), {3, 2});
  expect_values(ops::argmax(x, 0), {0, 0, 0, 0});
  Tensor k = ops::argmin(x, 0, true);
  EXPECT_EQ(k.shape(), Shape({1, 4}));
  expect_values(k, {1, 1, 1, 1});
  // 3-D, middle axis (strided path).
  Tensor y = make({2, 3, 2}, {0, 5, 9, 1, 4, 1, 6, 6, 2, 8, 7, 0});
  expect_values(ops::argmax(y, 1), {1, 0, 2, 1});
  expect_values(ops::argmin(y, 1), {0, 1, 1, 2});
  // NaN counts as the maximum.
  Tensor n = make({2, 3}, {1, kNaN, 5, kNaN, 0, kNaN}, DType::Float32);
  expect_values(ops::argmax(n, 1), {1, 0});
  expect_values(ops::argmin(n, 1), {0, 1});
  expect_values(ops::argmax(make({3}, {2, 9, 9}, DType::Int32), 0), {1});
}

TEST(ReduceGrad, SumMeanAllAxisCombinations) {
  Tensor x = rand({2, 3, 4});
  for (std::vector<int> axes : {std::vector<int>{}, {0}, {1}, {-1}, {0, 2}, {1, 2}, {0, 1, 2}})
    for (bool keep : {false, true}) {
      gradcheck([&](const std::vector<Tensor>& in) { return ops::sum(in[0], axes, keep); }, {x});
      gradcheck([&](const std::vector<Tensor>& in) { return ops::mean(in[0], axes, keep); }, {x});
      gradcheck([&](const std::vector<Tensor>& in) { return ops::logsumexp(in[0], axes, keep); }, {x});
      gradcheck([&](const std::vector<Tensor>& in) { return ops::prod(in[0], axes, keep); }, {x});
      gradcheck([&](const std::vector<Tensor>& in) { return ops::max(in[0], axes, keep); }, {x});
      gradcheck([&](const std::vector<Tensor>& in) { return ops::min(in[0], axes, keep); }, {x});
    }
}

TEST(ReduceGrad, ReductionOfABroadcastProduct) {
  // The reduction sits after a broadcasting multiply: gradients reach both operands.
  Tensor a = rand({3, 1}, -1, 1, 4), b = rand({1, 4}, -1, 1, 5);
  gradcheck([](const std::vector<Tensor>& in) { return ops::sum(ops::multiply(in[0], in[1]), {0}); }, {a, b});
  gradcheck([](const std::vector<Tensor>& in) { return ops::logsumexp(ops::multiply(in[0], in[1]), {1}, true); },
            {a, b});
}

TEST(ReduceGrad, MaxMinSplitTheGradientAmongTies) {
  Tensor x = make({2, 3}, {1, 5, 5, 2, 2, 2});
  x.set_requires_grad(true);
  autograd::backward(ops::sum(ops::max(x, {1})));
  expect_values(autograd::grad(x), {0, 0.5, 0.5, 1.0 / 3, 1.0 / 3, 1.0 / 3});
  Tensor y = make({2, 2}, {4, 1, 1, 3});
  y.set_requires_grad(true);
  autograd::backward(ops::min(y));
  expect_values(autograd::grad(y), {0, 0.5, 0.5, 0});
}

TEST(ReduceGrad, ProdWithZeros) {
  // One zero in a group: only the zero gets the product of the others; two zeros: all zero.
  Tensor x = make({3, 3}, {2, 0, 3, 0, 0, 4, 1, 2, 3});
  x.set_requires_grad(true);
  autograd::backward(ops::sum(ops::prod(x, {1})));
  expect_values(autograd::grad(x), {0, 6, 0, 0, 0, 0, 6, 3, 2});
  gradcheck([](const std::vector<Tensor>& in) { return ops::prod(in[0], {1}); },
            {make({3, 3}, {2, 0, 3, 0.5, -1.5, 4, 1, 2, 3})});
  gradcheck([](const std::vector<Tensor>& in) { return ops::prod(in[0], {0}, true); },
            {make({3, 3}, {2, 0, 3, 0.5, -1.5, 4, 1, 2, 3})});
}

TEST(ReduceGrad, IntegerReductionsCarryNoGradient) {
  Tensor x = rand({2, 2});
  x.set_requires_grad(true);
  Tensor a = ops::argmax(x, 0);
  EXPECT_FALSE(a.requires_grad());
  EXPECT_TRUE(ops::sum(x).requires_grad());
}

}  // namespace
