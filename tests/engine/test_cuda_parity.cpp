// CPU vs CUDA parity of every Backend method the CUDA backend implements, forward and backward,
// in float32: the same inputs go through the CPU backend (the reference) and, copied to the GPU,
// through the CUDA backend; the results must agree within the stated tolerances. On a machine
// without a usable GPU (or in a build without the CUDA backend) every test is SKIPPED with the
// reason cudart gave.
//
// Tolerances (float32): elementwise and movement ops 1e-6 abs + 1e-5 rel (the GPU's exp/log/erf
// and fused multiply-adds differ by an ulp or two); reductions, softmax and losses 1e-5 abs +
// 1e-5 rel (another summation order); GEMM 1e-4 abs + 1e-4 rel over k = 67 (TF32 is off by
// default); cuDNN convolutions 1e-4 abs + 1e-4 rel; pooling and image transforms as elementwise; uniform and dropout draws are identical, normal draws within 1e-6 (libm vs CUDA
// cos/sin/log); integer and bool results must be identical; float64 paths 1e-10 (cuDNN) to 1e-14
// (elementwise); optimizer updates as elementwise (float64: 1e-12). The CudaParityCudnn tests at
// the end (softmax, pooling, activations through cuDNN) state their own tolerances.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "cuda_test_util.h"

namespace rk {
namespace {

using rk::testing::cpu, rk::testing::gpu, rk::testing::kGpu, rk::testing::rnd, rk::testing::to_cpu,
    rk::testing::to_gpu, rk::testing::values;

Tensor empty_like_on(const Tensor& t, Device dev, DType dt) { return Tensor::empty(t.shape(), dt, dev); }

void expect_close(const Tensor& ref, const Tensor& gpu_result, double atol, double rtol, const std::string& what) {
  const Tensor got = to_cpu(gpu_result);
  ASSERT_EQ(ref.shape(), got.shape()) << what;
  const std::vector<double> a = values(ref), b = values(got);
  int bad = 0;
  for (size_t i = 0; i < a.size() && bad < 5; ++i) {
    const bool both_nan = std::isnan(a[i]) && std::isnan(b[i]);
    const bool same_inf = std::isinf(a[i]) && a[i] == b[i];
    if (both_nan || same_inf) continue;
    if (!(std::fabs(a[i] - b[i]) <= atol + rtol * std::fabs(a[i]))) {
      ADD_FAILURE() << what << ": element " << i << ": cpu " << a[i] << " vs cuda " << b[i];
      ++bad;
    }
  }
}

constexpr double kEwAtol = 1e-6, kEwRtol = 1e-5;
constexpr double kRedAtol = 1e-5, kRedRtol = 1e-5;

TEST(CudaParity, CopyConvertFillBroadcast) {
  REQUIRE_GPU();
  Tensor x = rnd(Shape({3, 1, 5}), -100, 100);
  for (DType dt : {DType::Float32, DType::Float64, DType::Int32, DType::Bool}) {
    Tensor rc = Tensor::empty(x.shape(), dt);
    cpu().copy(x, rc);
    Tensor gx = to_gpu(x), gc = empty_like_on(x, kGpu, dt);
    gpu().copy(gx, gc);  // conversion on the device
    expect_close(rc, gc, 0, 0, std::string("copy to ") + dtype_name(dt));
    Tensor hc = Tensor::empty(x.shape(), dt);
    gpu().copy(gx, hc);  // device -> host with conversion
    expect_close(rc, to_gpu(hc), 0, 0, std::string("download to ") + dtype_name(dt));
  }
  Tensor rf = Tensor::empty(Shape({4, 3}), DType::Int32), gf = Tensor::empty(Shape({4, 3}), DType::Int32, kGpu);
  cpu().fill(rf, -7.9);
  gpu().fill(gf, -7.9);
  expect_close(rf, gf, 0, 0, "fill int32");
  Tensor rb = Tensor::empty(Shape({2, 3, 4, 5})), gb = Tensor::empty(Shape({2, 3, 4, 5}), DType::Float32, kGpu);
  Tensor src = rnd(Shape({3, 1, 5}));
  cpu().broadcast_to(src, rb);
  gpu().broadcast_to(to_gpu(src), gb);
  expect_close(rb, gb, 0, 0, "broadcast_to");
}

TEST(CudaParity, UnaryForwardAndBackward) {
  REQUIRE_GPU();
  const std::vector<UnaryOp> ops = {
      UnaryOp::Neg, UnaryOp::Exp, UnaryOp::Log, UnaryOp::Log1p, UnaryOp::Sqrt, UnaryOp::Square, UnaryOp::Abs,
      UnaryOp::Sign, UnaryOp::Reciprocal, UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::Relu, UnaryOp::Relu6,
      UnaryOp::Elu, UnaryOp::Selu, UnaryOp::Softplus, UnaryOp::Softsign, UnaryOp::Gelu, UnaryOp::GeluTanh,
      UnaryOp::Silu, UnaryOp::Mish, UnaryOp::LeakyRelu, UnaryOp::HardSigmoid, UnaryOp::Erf, UnaryOp::Clip};
  for (UnaryOp op : ops) {
    const bool positive = op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::Reciprocal;
    Tensor x = positive ? rnd(Shape({7, 33}), 0.1, 9) : rnd(Shape({7, 33}), -8, 8);
    UnaryParams p;
    p.a = op == UnaryOp::HardSigmoid ? 0.2 : op == UnaryOp::Clip ? -1.5 : 0.3;
    p.b = op == UnaryOp::HardSigmoid ? 0.5 : 2.5;
    const std::string name = "unary op " + std::to_string(static_cast<int>(op));
    Tensor ry = Tensor::empty(x.shape()), gx = to_gpu(x), gy = Tensor::empty(x.shape(), DType::Float32, kGpu);
    cpu().unary(op, x, ry, p);
    gpu().unary(op, gx, gy, p);
    expect_close(ry, gy, kEwAtol, kEwRtol, name);
    Tensor up = rnd(x.shape(), -1, 1, 11);
    Tensor rgx = Tensor::empty(x.shape()), ggx = Tensor::empty(x.shape(), DType::Float32, kGpu);
    cpu().unary_backward(op, x, ry, up, rgx, p);
    gpu().unary_backward(op, gx, to_gpu(ry), to_gpu(up), ggx, p);
    expect_close(rgx, ggx, kEwAtol, kEwRtol, name + " backward");
  }
  // LogicalNot writes Bool; int32 ops wrap as on the CPU.
  Tensor xi = Tensor::empty(Shape({9}), DType::Int32);
  cpu().copy(rk::testing::make(Shape({9}), {-4, -1, 0, 1, 2, 7, 2147483647, -2147483647, 3}), xi);
  for (UnaryOp op : {UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Sign, UnaryOp::Square, UnaryOp::Relu6, UnaryOp::Clip}) {
    UnaryParams p{-2, 5};
    Tensor r = Tensor::empty(xi.shape(), DType::Int32), g = Tensor::empty(xi.shape(), DType::Int32, kGpu);
    cpu().unary(op, xi, r, p);
    gpu().unary(op, to_gpu(xi), g, p);
    expect_close(r, g, 0, 0, "int32 unary " + std::to_string(static_cast<int>(op)));
  }
  Tensor rn = Tensor::empty(xi.shape(), DType::Bool), gn = Tensor::empty(xi.shape(), DType::Bool, kGpu);
  cpu().unary(UnaryOp::LogicalNot, xi, rn, {});
  gpu().unary(UnaryOp::LogicalNot, to_gpu(xi), gn, {});
  expect_close(rn, gn, 0, 0, "logical_not");
}

TEST(CudaParity, BinaryWithBroadcastingAndWhere) {
  REQUIRE_GPU();
  const std::vector<BinaryOp> ops = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow,
                                     BinaryOp::Maximum, BinaryOp::Minimum, BinaryOp::Equal, BinaryOp::NotEqual,
                                     BinaryOp::Less, BinaryOp::LessEqual, BinaryOp::Greater, BinaryOp::GreaterEqual,
                                     BinaryOp::LogicalAnd, BinaryOp::LogicalOr};
  const Shape sa({4, 1, 6}), sb({3, 1}), so({4, 3, 6});
  Tensor a = rnd(sa, 0.5, 3, 1), b = rnd(sb, 0.5, 3, 2);
  for (BinaryOp op : ops) {
    const bool cmp = op >= BinaryOp::Equal;
    const DType odt = cmp ? DType::Bool : DType::Float32;
    Tensor r = Tensor::empty(so, odt), g = Tensor::empty(so, odt, kGpu);
    cpu().binary(op, a, b, r);
    gpu().binary(op, to_gpu(a), to_gpu(b), g);
    expect_close(r, g, cmp ? 0 : kEwAtol, cmp ? 0 : kEwRtol, "binary op " + std::to_string(static_cast<int>(op)));
  }
  // int32 arithmetic wraps, division by zero gives 0 (CPU semantics).
  Tensor ia = Tensor::empty(Shape({6}), DType::Int32), ib = Tensor::empty(Shape({6}), DType::Int32);
  cpu().copy(rk::testing::make(Shape({6}), {2147483647, -7, 7, 9, -2147483647, 3}), ia);
  cpu().copy(rk::testing::make(Shape({6}), {1, 2, 0, -1, -1, 4}), ib);
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow}) {
    Tensor r = Tensor::empty(Shape({6}), DType::Int32), g = Tensor::empty(Shape({6}), DType::Int32, kGpu);
    cpu().binary(op, ia, ib, r);
    gpu().binary(op, to_gpu(ia), to_gpu(ib), g);
    expect_close(r, g, 0, 0, "int32 binary " + std::to_string(static_cast<int>(op)));
  }
  Tensor cond = Tensor::empty(Shape({4, 1, 1}), DType::Bool);
  cpu().copy(rk::testing::make(Shape({4, 1, 1}), {1, 0, 0, 1}), cond);
  Tensor r = Tensor::empty(so), g = Tensor::empty(so, DType::Float32, kGpu);
  cpu().where(cond, a, b, r);
  gpu().where(to_gpu(cond), to_gpu(a), to_gpu(b), g);
  expect_close(r, g, 0, 0, "where");
}

TEST(CudaParity, ReductionsAndArgReductions) {
  REQUIRE_GPU();
  Tensor x = rnd(Shape({5, 4, 300}), -3, 3);
  const std::vector<std::vector<int>> axes_sets = {{2}, {0}, {1}, {0, 2}, {0, 1, 2}};
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min, ReduceOp::LogSumExp}) {
    for (const auto& axes : axes_sets) {
      std::vector<int64_t> kept;
      for (int i = 0; i < 3; ++i)
        if (std::find(axes.begin(), axes.end(), i) == axes.end()) kept.push_back(x.size(i));
      Shape os(kept);
      Tensor r = Tensor::empty(os), g = Tensor::empty(os, DType::Float32, kGpu);
      cpu().reduce(op, x, axes, r);
      gpu().reduce(op, to_gpu(x), axes, g);
      expect_close(r, g, kRedAtol, kRedRtol, "reduce " + std::to_string(static_cast<int>(op)));
    }
  }
  Tensor small = rnd(Shape({3, 7}), 0.5, 1.5);
  Tensor rp = Tensor::empty(Shape({3})), gp = Tensor::empty(Shape({3}), DType::Float32, kGpu);
  cpu().reduce(ReduceOp::Prod, small, {1}, rp);
  gpu().reduce(ReduceOp::Prod, to_gpu(small), {1}, gp);
  expect_close(rp, gp, kRedAtol, kRedRtol, "prod");
  for (ArgReduceOp op : {ArgReduceOp::ArgMax, ArgReduceOp::ArgMin})
    for (int axis : {0, 1, 2}) {
      std::vector<int64_t> kept;
      for (int i = 0; i < 3; ++i)
        if (i != axis) kept.push_back(x.size(i));
      Tensor r = Tensor::empty(Shape(kept), DType::Int32), g = Tensor::empty(Shape(kept), DType::Int32, kGpu);
      cpu().arg_reduce(op, x, axis, r);
      gpu().arg_reduce(op, to_gpu(x), axis, g);
      expect_close(r, g, 0, 0, "arg_reduce axis " + std::to_string(axis));
    }
}

// Shapes that take each path of the CUDA reduction: column kernel (kept innermost axis, e.g. the
// bias gradient [N*H*W, C] -> [C]) with and without splitting the rows over several blocks,
// row kernel with a split (a full sum of a large tensor) and the column kernel with an outer kept
// axis ([A, R, K] over R). Sums are accumulated in double on both devices.
TEST(CudaParity, ReductionPathsLargeShapesIntegersAndFloat64) {
  REQUIRE_GPU();
  struct Case {
    Shape shape;
    std::vector<int> axes;
  };
  const std::vector<Case> cases = {{Shape({8192, 64}), {0}},           // bias gradient, split columns
                                   {Shape({16, 8, 8, 3}), {0, 1, 2}},  // small C
                                   {Shape({1 << 20}), {0}},            // full reduction, split rows
                                   {Shape({3, 100000}), {1}},          // few long rows
                                   {Shape({7, 513, 37}), {1}},         // [A, R, K] over R
                                   {Shape({6, 5, 4, 3}), {0, 2}},      // separate reduced axes
                                   {Shape({2, 3000, 1, 2}), {1, 2}}};  // size-1 axis among the reduced
  for (const Case& c : cases) {
    std::vector<int64_t> kept;
    for (int i = 0; i < c.shape.rank(); ++i)
      if (std::find(c.axes.begin(), c.axes.end(), i) == c.axes.end()) kept.push_back(c.shape[i]);
    const Shape os(kept);
    Tensor x = rnd(c.shape, -3, 3, 101);
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min, ReduceOp::LogSumExp}) {
      Tensor r = Tensor::empty(os), g = Tensor::empty(os, DType::Float32, kGpu);
      cpu().reduce(op, x, c.axes, r);
      gpu().reduce(op, to_gpu(x), c.axes, g);
      expect_close(r, g, 1e-4, kRedRtol, "reduce " + std::to_string(static_cast<int>(op)) + " of " + c.shape.str());
    }
    Tensor x64 = rk::testing::rand(c.shape, -3, 3, 102);
    Tensor r64 = Tensor::empty(os, DType::Float64), g64 = Tensor::empty(os, DType::Float64, kGpu);
    cpu().reduce(ReduceOp::Sum, x64, c.axes, r64);
    gpu().reduce(ReduceOp::Sum, to_gpu(x64), c.axes, g64);
    expect_close(r64, g64, 1e-9, 1e-12, "float64 sum of " + c.shape.str());
    // int32 sums are exact (int64 accumulators), as are max/min and products that wrap.
    Tensor xi = Tensor::empty(c.shape, DType::Int32);
    cpu().copy(rk::testing::rand(c.shape, -1000, 1000, 103), xi);
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Prod}) {
      Tensor r = Tensor::empty(os, DType::Int32), g = Tensor::empty(os, DType::Int32, kGpu);
      cpu().reduce(op, xi, c.axes, r);
      gpu().reduce(op, to_gpu(xi), c.axes, g);
      expect_close(r, g, 0, 0, "int32 reduce " + std::to_string(static_cast<int>(op)) + " of " + c.shape.str());
    }
  }
  // NaN propagates through Max/Min/LogSumExp and an infinite max is the logsumexp; bool any/all.
  Tensor xn = rnd(Shape({40, 6}), -3, 3, 104);
  xn.data<float>()[5 * 6 + 2] = NAN;
  xn.data<float>()[7 * 6 + 4] = INFINITY;
  for (ReduceOp op : {ReduceOp::Max, ReduceOp::Min, ReduceOp::LogSumExp, ReduceOp::Sum})
    for (int axis : {0, 1}) {
      const Shape os(axis == 0 ? std::vector<int64_t>{6} : std::vector<int64_t>{40});
      Tensor r = Tensor::empty(os), g = Tensor::empty(os, DType::Float32, kGpu);
      cpu().reduce(op, xn, {axis}, r);
      gpu().reduce(op, to_gpu(xn), {axis}, g);
      expect_close(r, g, kRedAtol, kRedRtol, "non-finite reduce " + std::to_string(static_cast<int>(op)));
    }
  // Bool columns: all true, all false, mixed.
  std::vector<double> bv;
  for (int i = 0; i < 50; ++i) bv.insert(bv.end(), {1.0, 0.0, i % 7 == 3 ? 0.0 : 1.0});
  Tensor xb = Tensor::empty(Shape({50, 3}), DType::Bool);
  cpu().copy(rk::testing::make(Shape({50, 3}), bv), xb);
  for (ReduceOp op : {ReduceOp::Max, ReduceOp::Min, ReduceOp::Sum, ReduceOp::Prod}) {
    Tensor r = Tensor::empty(Shape({3}), DType::Bool), g = Tensor::empty(Shape({3}), DType::Bool, kGpu);
    cpu().reduce(op, xb, {0}, r);
    gpu().reduce(op, to_gpu(xb), {0}, g);
    expect_close(r, g, 0, 0, "bool reduce " + std::to_string(static_cast<int>(op)));
  }
  // Reducing an empty axis gives the identity (Mean: NaN) on both devices.
  Tensor xe = Tensor::empty(Shape({0, 4}));
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min}) {
    Tensor r = Tensor::empty(Shape({4})), g = Tensor::empty(Shape({4}), DType::Float32, kGpu);
    cpu().reduce(op, xe, {0}, r);
    gpu().reduce(op, to_gpu(xe), {0}, g);
    expect_close(r, g, 0, 0, "empty reduce " + std::to_string(static_cast<int>(op)));
  }
}

// Broadcasting shapes of a convnet (bias and per-channel scales over [N, H, W, C], a [N, 1, 1, C]
// gate), float64 and int32 operands, upload with conversion, where with every operand broadcast.
TEST(CudaParity, BroadcastingLayoutsFloat64AndIntegerDtypes) {
  REQUIRE_GPU();
  const Shape so({4, 9, 7, 16});
  for (const Shape& sb : {Shape({16}), Shape({4, 1, 1, 16}), Shape({9, 1, 1}), Shape({4, 9, 7, 16})}) {
    Tensor a = rnd(so, -2, 2, 111), b = rnd(sb, 0.5, 2, 112);
    for (BinaryOp op : {BinaryOp::Add, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Greater}) {
      const DType odt = op == BinaryOp::Greater ? DType::Bool : DType::Float32;
      Tensor r = Tensor::empty(so, odt), g = Tensor::empty(so, odt, kGpu);
      cpu().binary(op, a, b, r);
      gpu().binary(op, to_gpu(a), to_gpu(b), g);
      expect_close(r, g, kEwAtol, kEwRtol, "binary " + std::to_string(static_cast<int>(op)) + " with " + sb.str());
      Tensor r2 = Tensor::empty(so, odt), g2 = Tensor::empty(so, odt, kGpu);  // broadcast operand first
      cpu().binary(op, b, a, r2);
      gpu().binary(op, to_gpu(b), to_gpu(a), g2);
      expect_close(r2, g2, kEwAtol, kEwRtol, "binary " + std::to_string(static_cast<int>(op)) + " with " + sb.str() + " first");
    }
  }
  Tensor a64 = rk::testing::rand(Shape({5, 6}), 0.5, 2, 113), b64 = rk::testing::rand(Shape({6}), 0.5, 2, 114);
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow, BinaryOp::Maximum}) {
    Tensor r = Tensor::empty(Shape({5, 6}), DType::Float64), g = Tensor::empty(Shape({5, 6}), DType::Float64, kGpu);
    cpu().binary(op, a64, b64, r);
    gpu().binary(op, to_gpu(a64), to_gpu(b64), g);
    expect_close(r, g, 1e-14, 1e-14, "float64 binary " + std::to_string(static_cast<int>(op)));
  }
  for (UnaryOp op : {UnaryOp::Exp, UnaryOp::Log, UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::Gelu, UnaryOp::Sqrt}) {
    Tensor r = Tensor::empty(a64.shape(), DType::Float64), g = Tensor::empty(a64.shape(), DType::Float64, kGpu);
    cpu().unary(op, a64, r, {});
    gpu().unary(op, to_gpu(a64), g, {});
    expect_close(r, g, 1e-14, 1e-14, "float64 unary " + std::to_string(static_cast<int>(op)));
    Tensor up = rk::testing::rand(a64.shape(), -1, 1, 115);
    Tensor rg = Tensor::empty(a64.shape(), DType::Float64), gg = Tensor::empty(a64.shape(), DType::Float64, kGpu);
    cpu().unary_backward(op, a64, r, up, rg, {});
    gpu().unary_backward(op, to_gpu(a64), to_gpu(r), to_gpu(up), gg, {});
    expect_close(rg, gg, 1e-14, 1e-14, "float64 unary backward " + std::to_string(static_cast<int>(op)));
  }
  // Upload with conversion (host float32 -> device int32/bool), fill of bool.
  Tensor xf = rnd(Shape({3, 4}), -50, 50, 116);
  for (DType dt : {DType::Int32, DType::Bool, DType::Float64}) {
    Tensor r = Tensor::empty(xf.shape(), dt), g = Tensor::empty(xf.shape(), dt, kGpu);
    cpu().copy(xf, r);
    gpu().copy(xf, g);
    expect_close(r, g, 0, 0, std::string("upload converting to ") + dtype_name(dt));
  }
  // where: condition, a and b each broadcast along a different axis; int32 operands.
  Tensor cond = Tensor::empty(Shape({3, 1, 1}), DType::Bool);
  cpu().copy(rk::testing::make(Shape({3, 1, 1}), {1, 0, 1}), cond);
  Tensor wa = Tensor::empty(Shape({1, 4, 1}), DType::Int32), wb = Tensor::empty(Shape({5}), DType::Int32);
  cpu().copy(rk::testing::make(Shape({1, 4, 1}), {1, 2, 3, 4}), wa);
  cpu().copy(rk::testing::make(Shape({5}), {-1, -2, -3, -4, -5}), wb);
  Tensor rw = Tensor::empty(Shape({3, 4, 5}), DType::Int32), gw = Tensor::empty(Shape({3, 4, 5}), DType::Int32, kGpu);
  cpu().where(cond, wa, wb, rw);
  gpu().where(to_gpu(cond), to_gpu(wa), to_gpu(wb), gw);
  expect_close(rw, gw, 0, 0, "where int32 three-way broadcast");
  // gather of int32 rows (embedding ids), one_hot into int32, gemm in float64.
  Tensor table = Tensor::empty(Shape({6, 3}), DType::Int32);
  cpu().copy(rk::testing::rand(Shape({6, 3}), -100, 100, 117), table);
  Tensor ids = Tensor::empty(Shape({4}), DType::Int32);
  cpu().copy(rk::testing::make(Shape({4}), {5, 0, 5, 2}), ids);
  Tensor rgt = Tensor::empty(Shape({4, 3}), DType::Int32), ggt = Tensor::empty(Shape({4, 3}), DType::Int32, kGpu);
  cpu().gather(table, ids, 0, rgt);
  gpu().gather(to_gpu(table), to_gpu(ids), 0, ggt);
  expect_close(rgt, ggt, 0, 0, "gather int32");
  Tensor roh = Tensor::empty(Shape({4, 6}), DType::Int32), goh = Tensor::empty(Shape({4, 6}), DType::Int32, kGpu);
  cpu().one_hot(ids, roh);
  gpu().one_hot(to_gpu(ids), goh);
  expect_close(roh, goh, 0, 0, "one_hot int32");
  Tensor ga = rk::testing::rand(Shape({2, 5 * 7}), -1, 1, 118), gb = rk::testing::rand(Shape({2, 7 * 3}), -1, 1, 119);
  Tensor rc = Tensor::empty(Shape({2, 5 * 3}), DType::Float64), gc = Tensor::empty(Shape({2, 5 * 3}), DType::Float64, kGpu);
  cpu().gemm(false, true, 2, 5, 3, 7, 1.0, ga, 35, gb, 21, 0.0, rc, 15);
  gpu().gemm(false, true, 2, 5, 3, 7, 1.0, to_gpu(ga), 35, to_gpu(gb), 21, 0.0, gc, 15);
  expect_close(rc, gc, 1e-13, 1e-13, "float64 batched gemm");
}

// The float64 kernels of the remaining families: softmax (+ backward), the fused losses, pooling,
// scatter_add, image transforms and where.
TEST(CudaParity, Float64SoftmaxLossesPoolingScatterImage) {
  REQUIRE_GPU();
  const DType f64 = DType::Float64;
  Tensor x = rk::testing::rand(Shape({5, 7, 3}), -4, 4, 131), up = rk::testing::rand(Shape({5, 7, 3}), -1, 1, 132);
  for (bool lg : {false, true}) {
    Tensor ry = Tensor::empty(x.shape(), f64), gy = Tensor::empty(x.shape(), f64, kGpu);
    cpu().softmax(x, ry, 1, lg);
    gpu().softmax(to_gpu(x), gy, 1, lg);
    expect_close(ry, gy, 1e-13, 1e-13, lg ? "float64 log_softmax" : "float64 softmax");
    Tensor rg = Tensor::empty(x.shape(), f64), gg = Tensor::empty(x.shape(), f64, kGpu);
    cpu().softmax_backward(ry, up, rg, 1, lg);
    gpu().softmax_backward(to_gpu(ry), to_gpu(up), gg, 1, lg);
    expect_close(rg, gg, 1e-13, 1e-13, lg ? "float64 log_softmax backward" : "float64 softmax backward");
  }
  const Shape s2({9, 6});
  Tensor logits = rk::testing::rand(s2, -3, 3, 133), target = rk::testing::rand(s2, 0, 1, 134);
  Tensor rl = Tensor::empty(Shape({9}), f64), rp = Tensor::empty(s2, f64);
  Tensor gl = Tensor::empty(Shape({9}), f64, kGpu), gp = Tensor::empty(s2, f64, kGpu);
  cpu().softmax_cross_entropy(logits, target, rl, rp);
  gpu().softmax_cross_entropy(to_gpu(logits), to_gpu(target), gl, gp);
  expect_close(rl, gl, 1e-13, 1e-13, "float64 softmax_cross_entropy");
  Tensor labels = Tensor::empty(Shape({9}), DType::Int32);
  cpu().copy(rk::testing::make(Shape({9}), {0, 5, 2, 2, 4, 1, 3, 0, 5}), labels);
  cpu().sparse_softmax_cross_entropy(logits, labels, rl, rp);
  gpu().sparse_softmax_cross_entropy(to_gpu(logits), to_gpu(labels), gl, gp);
  expect_close(rl, gl, 1e-13, 1e-13, "float64 sparse_softmax_cross_entropy");
  expect_close(rp, gp, 1e-13, 1e-13, "float64 sparse_softmax_cross_entropy probs");
  Tensor gloss = rk::testing::rand(Shape({9}), -1, 1, 135);
  Tensor rgl = Tensor::empty(s2, f64), ggl = Tensor::empty(s2, f64, kGpu);
  cpu().sparse_softmax_cross_entropy_backward(rp, labels, gloss, rgl);
  gpu().sparse_softmax_cross_entropy_backward(to_gpu(rp), to_gpu(labels), to_gpu(gloss), ggl);
  expect_close(rgl, ggl, 1e-13, 1e-13, "float64 sparse_softmax_cross_entropy backward");
  Tensor rb = Tensor::empty(s2, f64), gb = Tensor::empty(s2, f64, kGpu);
  cpu().sigmoid_binary_cross_entropy(logits, target, rb);
  gpu().sigmoid_binary_cross_entropy(to_gpu(logits), to_gpu(target), gb);
  expect_close(rb, gb, 1e-14, 1e-13, "float64 sigmoid_binary_cross_entropy");
  // 2x2 max/avg pooling, stride 2, TF "same" on an odd extent (pad after).
  WindowGeometry wg;
  wg.window = {2, 2};
  wg.stride = {2, 2};
  wg.dilation = {1, 1};
  wg.pad_before = {0, 0};
  wg.pad_after = {1, 0};
  Tensor px = rk::testing::rand(Shape({2, 5, 4, 3}), -2, 2, 136), pup = rk::testing::rand(Shape({2, 3, 2, 3}), -1, 1, 137);
  for (PoolMode mode : {PoolMode::Max, PoolMode::Avg}) {
    Tensor ry = Tensor::empty(Shape({2, 3, 2, 3}), f64), gy = Tensor::empty(Shape({2, 3, 2, 3}), f64, kGpu);
    cpu().pool_forward(mode, px, ry, wg);
    gpu().pool_forward(mode, to_gpu(px), gy, wg);
    expect_close(ry, gy, 1e-14, 1e-14, "float64 pool");
    Tensor rg = Tensor::empty(px.shape(), f64), gg = Tensor::empty(px.shape(), f64, kGpu);
    cpu().pool_backward(mode, px, ry, pup, rg, wg);
    gpu().pool_backward(mode, to_gpu(px), to_gpu(ry), to_gpu(pup), gg, wg);
    expect_close(rg, gg, 1e-14, 1e-14, "float64 pool backward");
  }
  Tensor idx = Tensor::empty(Shape({4}), DType::Int32);
  cpu().copy(rk::testing::make(Shape({4}), {1, 1, 0, 2}), idx);
  Tensor g = rk::testing::rand(Shape({4, 3}), -1, 1, 138);
  Tensor rs = Tensor::empty(Shape({3, 3}), f64), gs = Tensor::empty(Shape({3, 3}), f64, kGpu);
  cpu().fill(rs, 0.5);
  gpu().fill(gs, 0.5);
  cpu().scatter_add(g, idx, 0, rs);
  gpu().scatter_add(to_gpu(g), to_gpu(idx), 0, gs);
  expect_close(rs, gs, 1e-14, 1e-14, "float64 scatter_add");
  Tensor images = rk::testing::rand(Shape({1, 6, 5, 2}), 0, 1, 139);
  Tensor transforms = Tensor::empty(Shape({1, 8}));
  cpu().copy(rk::testing::make(Shape({1, 8}), {0.9, -0.3, 1.25, 0.3, 0.9, -0.75, 0, 0}), transforms);
  Tensor ri = Tensor::empty(Shape({1, 6, 5, 2}), f64), gi = Tensor::empty(Shape({1, 6, 5, 2}), f64, kGpu);
  cpu().image_transform(images, transforms, ri, Interpolation::Bilinear, FillMode::Reflect, 0);
  gpu().image_transform(to_gpu(images), to_gpu(transforms), gi, Interpolation::Bilinear, FillMode::Reflect, 0);
  expect_close(ri, gi, 1e-12, 1e-12, "float64 image_transform");
}

TEST(CudaParity, SoftmaxForwardBackwardAndFusedLosses) {
  REQUIRE_GPU();
  Tensor x = rnd(Shape({6, 10, 3}), -5, 5);
  Tensor up = rnd(x.shape(), -1, 1, 5);
  for (bool lg : {false, true})
    for (int axis : {1, 2}) {
      const std::string name = std::string(lg ? "log_softmax" : "softmax") + " axis " + std::to_string(axis);
      Tensor ry = Tensor::empty(x.shape()), gy = Tensor::empty(x.shape(), DType::Float32, kGpu);
      cpu().softmax(x, ry, axis, lg);
      gpu().softmax(to_gpu(x), gy, axis, lg);
      expect_close(ry, gy, kRedAtol, kRedRtol, name);
      Tensor rg = Tensor::empty(x.shape()), gg = Tensor::empty(x.shape(), DType::Float32, kGpu);
      cpu().softmax_backward(ry, up, rg, axis, lg);
      gpu().softmax_backward(to_gpu(ry), to_gpu(up), gg, axis, lg);
      expect_close(rg, gg, kRedAtol, kRedRtol, name + " backward");
    }
  const Shape s2({16, 10});
  Tensor logits = rnd(s2, -4, 4, 3), target = rnd(s2, 0, 1, 4);
  Tensor rl = Tensor::empty(Shape({16})), rp = Tensor::empty(s2);
  Tensor gl = Tensor::empty(Shape({16}), DType::Float32, kGpu), gp = Tensor::empty(s2, DType::Float32, kGpu);
  cpu().softmax_cross_entropy(logits, target, rl, rp);
  gpu().softmax_cross_entropy(to_gpu(logits), to_gpu(target), gl, gp);
  expect_close(rl, gl, kRedAtol, kRedRtol, "softmax_cross_entropy loss");
  expect_close(rp, gp, kRedAtol, kRedRtol, "softmax_cross_entropy probs");
  Tensor labels = Tensor::empty(Shape({16}), DType::Int32);
  std::vector<double> lv;
  for (int i = 0; i < 16; ++i) lv.push_back((i * 7) % 10);
  cpu().copy(rk::testing::make(Shape({16}), lv), labels);
  cpu().sparse_softmax_cross_entropy(logits, labels, rl, rp);
  gpu().sparse_softmax_cross_entropy(to_gpu(logits), to_gpu(labels), gl, gp);
  expect_close(rl, gl, kRedAtol, kRedRtol, "sparse_softmax_cross_entropy loss");
  Tensor gloss = rnd(Shape({16}), -1, 1, 9);
  Tensor rgl = Tensor::empty(s2), ggl = Tensor::empty(s2, DType::Float32, kGpu);
  cpu().sparse_softmax_cross_entropy_backward(rp, labels, gloss, rgl);
  gpu().sparse_softmax_cross_entropy_backward(to_gpu(rp), to_gpu(labels), to_gpu(gloss), ggl);
  expect_close(rgl, ggl, kRedAtol, kRedRtol, "sparse_softmax_cross_entropy backward");
  Tensor rb = Tensor::empty(s2), gb = Tensor::empty(s2, DType::Float32, kGpu);
  cpu().sigmoid_binary_cross_entropy(logits, target, rb);
  gpu().sigmoid_binary_cross_entropy(to_gpu(logits), to_gpu(target), gb);
  expect_close(rb, gb, kEwAtol, kEwRtol, "sigmoid_binary_cross_entropy");
  // A bad label is an IndexError on both devices, raised before anything is written.
  Tensor bad = Tensor::empty(Shape({16}), DType::Int32);
  lv[5] = 10;
  cpu().copy(rk::testing::make(Shape({16}), lv), bad);
  EXPECT_THROW(gpu().sparse_softmax_cross_entropy(to_gpu(logits), to_gpu(bad), gl, gp), IndexError);
}

TEST(CudaParity, GemmRowMajorTransposesAndBatches) {
  REQUIRE_GPU();
  const int64_t m = 19, n = 23, k = 67, batch = 3;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t sb : {k * n, int64_t(0)}) {  // stride 0 broadcasts B over the batch
        Tensor a = rnd(Shape({batch, m * k}), -1, 1, 21), b = rnd(Shape({batch, k * n}), -1, 1, 22);
        Tensor c0 = rnd(Shape({batch, m * n}), -1, 1, 23);
        Tensor rc = Tensor::empty(c0.shape());
        cpu().copy(c0, rc);
        Tensor gc = to_gpu(c0);
        cpu().gemm(ta, tb, batch, m, n, k, 0.7, a, m * k, b, sb, 0.5, rc, m * n);
        gpu().gemm(ta, tb, batch, m, n, k, 0.7, to_gpu(a), m * k, to_gpu(b), sb, 0.5, gc, m * n);
        expect_close(rc, gc, 1e-4, 1e-4, std::string("gemm ta=") + (ta ? "1" : "0") + " tb=" + (tb ? "1" : "0") +
                                             " sb=" + std::to_string(sb));
      }
}

TEST(CudaParity, MovementPermuteRegionGatherScatterOneHot) {
  REQUIRE_GPU();
  Tensor x = rnd(Shape({2, 3, 4, 5}));
  const std::vector<int> perm = {3, 1, 0, 2};
  Tensor rp = Tensor::empty(Shape({5, 3, 2, 4})), gp = Tensor::empty(Shape({5, 3, 2, 4}), DType::Float32, kGpu);
  cpu().permute(x, perm, rp);
  gpu().permute(to_gpu(x), perm, gp);
  expect_close(rp, gp, 0, 0, "permute");
  for (bool acc : {false, true}) {
    Tensor dst0 = rnd(Shape({3, 6, 7}), -1, 1, 31), src = rnd(Shape({2, 4, 5}), -1, 1, 32);
    Tensor rd = Tensor::empty(dst0.shape());
    cpu().copy(dst0, rd);
    Tensor gd = to_gpu(dst0);
    cpu().copy_region(src, {1, 0, 1}, rd, {2, 1, 0}, {1, 3, 4}, acc);
    gpu().copy_region(to_gpu(src), {1, 0, 1}, gd, {2, 1, 0}, {1, 3, 4}, acc);
    expect_close(rd, gd, kEwAtol, kEwRtol, acc ? "copy_region accumulate" : "copy_region");
  }
  {  // whole rows (axes that merge into one run) and a middle-axis slice, into int32 tensors
    Tensor src = Tensor::empty(Shape({4, 3, 5}), DType::Int32), dst0 = Tensor::empty(Shape({6, 3, 5}), DType::Int32);
    cpu().copy(rk::testing::rand(Shape({4, 3, 5}), -100, 100, 33), src);
    cpu().copy(rk::testing::rand(Shape({6, 3, 5}), -100, 100, 34), dst0);
    Tensor rd = Tensor::empty(dst0.shape(), DType::Int32);
    cpu().copy(dst0, rd);
    Tensor gd = to_gpu(dst0);
    cpu().copy_region(src, {1, 0, 0}, rd, {3, 0, 0}, {2, 3, 5}, false);
    gpu().copy_region(to_gpu(src), {1, 0, 0}, gd, {3, 0, 0}, {2, 3, 5}, false);
    cpu().copy_region(src, {0, 1, 0}, rd, {0, 0, 0}, {4, 2, 5}, false);
    gpu().copy_region(to_gpu(src), {0, 1, 0}, gd, {0, 0, 0}, {4, 2, 5}, false);
    expect_close(rd, gd, 0, 0, "copy_region merged runs int32");
  }
  Tensor idx = Tensor::empty(Shape({2, 3}), DType::Int32);
  cpu().copy(rk::testing::make(Shape({2, 3}), {3, 0, 3, 1, 2, 3}), idx);  // repeats: scatter_add must add
  Tensor rg = Tensor::empty(Shape({2, 3, 2, 3, 5})), gg = Tensor::empty(Shape({2, 3, 2, 3, 5}), DType::Float32, kGpu);
  cpu().gather(x, idx, 2, rg);
  gpu().gather(to_gpu(x), to_gpu(idx), 2, gg);
  expect_close(rg, gg, 0, 0, "gather");
  Tensor up = rnd(rg.shape(), -1, 1, 41);
  Tensor rs = Tensor::empty(x.shape()), gs = Tensor::empty(x.shape(), DType::Float32, kGpu);
  cpu().fill(rs, 0);
  gpu().fill(gs, 0);
  cpu().scatter_add(up, idx, 2, rs);
  gpu().scatter_add(to_gpu(up), to_gpu(idx), 2, gs);
  expect_close(rs, gs, kEwAtol, kEwRtol, "scatter_add");
  Tensor bad = Tensor::empty(Shape({2}), DType::Int32);
  cpu().copy(rk::testing::make(Shape({2}), {1, 4}), bad);
  EXPECT_THROW(gpu().gather(to_gpu(x), to_gpu(bad), 2, gg), IndexError);
  Tensor labels = Tensor::empty(Shape({4}), DType::Int32);
  cpu().copy(rk::testing::make(Shape({4}), {2, 0, 7, -1}), labels);  // out-of-range rows are all 0
  Tensor ro = Tensor::empty(Shape({4, 3})), go = Tensor::empty(Shape({4, 3}), DType::Float32, kGpu);
  cpu().one_hot(labels, ro);
  gpu().one_hot(to_gpu(labels), go);
  expect_close(ro, go, 0, 0, "one_hot");
}

TEST(CudaParity, RandomDrawsFollowTheSamePhiloxStream) {
  REQUIRE_GPU();
  for (DType dt : {DType::Float32, DType::Float64}) {
    const Shape s({1001});  // not a multiple of the per-counter block
    Generator g1(1234), g2(1234);
    g1.set_offset(17);
    g2.set_offset(17);
    Tensor r = Tensor::empty(s, dt), g = Tensor::empty(s, dt, kGpu);
    cpu().random_uniform(r, -2, 3, g1);
    gpu().random_uniform(g, -2, 3, g2);
    expect_close(r, g, 0, 0, "random_uniform");
    EXPECT_EQ(g1.offset(), g2.offset());
    cpu().random_normal(r, 0.5, 2, g1);
    gpu().random_normal(g, 0.5, 2, g2);
    expect_close(r, g, 1e-6, 1e-6, "random_normal");
    cpu().dropout_mask(r, 0.3, 1 / 0.7, g1);
    gpu().dropout_mask(g, 0.3, 1 / 0.7, g2);
    expect_close(r, g, 0, 0, "dropout_mask");
    EXPECT_EQ(g1.offset(), g2.offset());
  }
}

TEST(CudaParity, FusedOptimizerUpdates) {
  REQUIRE_GPU();
  struct Case {
    OptimizerRule rule;
    OptimizerHyper h;
    int slots;
  };
  std::vector<Case> cases;
  OptimizerHyper h;
  h.lr = 0.05;
  h.step = 3;
  h.weight_decay = 0.01;
  h.clip_value = 0.8;
  cases.push_back({OptimizerRule::SGD, h, 0});
  h.momentum = 0.9;
  h.nesterov = true;
  cases.push_back({OptimizerRule::SGD, h, 1});
  h.momentum = 0;
  cases.push_back({OptimizerRule::Adam, h, 2});
  h.amsgrad = true;
  cases.push_back({OptimizerRule::Adam, h, 3});
  h.amsgrad = false;
  h.momentum = 0.5;
  h.centered = true;
  cases.push_back({OptimizerRule::RMSprop, h, 3});
  h.momentum = 0;
  h.centered = false;
  cases.push_back({OptimizerRule::Adagrad, h, 1});
  h.rho = 0.95;
  cases.push_back({OptimizerRule::Adadelta, h, 2});
  cases.push_back({OptimizerRule::Adamax, h, 2});
  h.u_product = 1;  // Keras's _u_product after step 3
  for (int st = 1; st <= 3; ++st) h.u_product *= h.beta_1 * (1 - 0.5 * std::pow(0.96, st));
  cases.push_back({OptimizerRule::Nadam, h, 2});
  OptimizerHyper f = h;
  f.weight_decay = 0;
  f.l1 = 0.01;
  f.l2 = 0.02;
  f.l2_shrinkage = 0.03;
  f.ftrl_beta = 0.1;
  f.lr_power = -0.5;
  cases.push_back({OptimizerRule::Ftrl, f, 2});
  h.beta_1 = 0.9;
  h.beta_2 = 0.99;
  cases.push_back({OptimizerRule::Lion, h, 1});
  h.clip_value = 0;
  h.grad_scale = 0.5;  // clipnorm's scaling, no elementwise clip
  cases.push_back({OptimizerRule::Adam, h, 2});
  // Every rule in float32, and the Adam cases again in float64 (tighter tolerance).
  for (DType dt : {DType::Float32, DType::Float64})
    for (const Case& c : cases) {
      if (dt == DType::Float64 && c.rule != OptimizerRule::Adam) continue;
      const Shape s({257});
      Tensor p0 = rnd(s, -1, 1, 51), grad = rnd(s, -2, 2, 52);
      if (dt == DType::Float64) {
        p0 = rk::testing::rand(s, -1, 1, 51);
        grad = rk::testing::rand(s, -2, 2, 52);
      }
      std::vector<Tensor> rs, gs;
      for (int j = 0; j < c.slots; ++j) {
        Tensor v = dt == DType::Float64 ? rk::testing::rand(s, 0.01, 0.5, 60 + static_cast<uint64_t>(j))
                                        : rnd(s, 0.01, 0.5, 60 + static_cast<uint64_t>(j));
        rs.push_back(v);
        gs.push_back(to_gpu(v));
      }
      Tensor rp = Tensor::empty(s, dt);
      cpu().copy(p0, rp);
      Tensor gp = to_gpu(p0);
      cpu().optimizer_update(c.rule, rp, grad, rs, c.h);
      gpu().optimizer_update(c.rule, gp, to_gpu(grad), gs, c.h);
      const std::string name = "optimizer rule " + std::to_string(static_cast<int>(c.rule)) + " " + dtype_name(dt);
      const double at = dt == DType::Float64 ? 1e-12 : kEwAtol, rt = dt == DType::Float64 ? 1e-12 : kEwRtol;
      expect_close(rp, gp, at, rt, name);
      for (int j = 0; j < c.slots; ++j)
        expect_close(rs[static_cast<size_t>(j)], gs[static_cast<size_t>(j)], at, rt, name + " slot " + std::to_string(j));
    }
}

TEST(CudaParity, PoolingForwardBackwardWithAsymmetricPadding) {
  REQUIRE_GPU();
  for (int rank : {1, 2, 3}) {
    WindowGeometry p;
    std::vector<int64_t> xs = {2}, ys = {2};
    for (int i = 0; i < rank; ++i) {
      const int64_t in = 5 + i, win = 3, stride = 2, pb = 1, pa = 2;  // TF "same"-like odd pad after
      p.window.push_back(win);
      p.stride.push_back(stride);
      p.dilation.push_back(1);
      p.pad_before.push_back(pb);
      p.pad_after.push_back(pa);
      xs.push_back(in);
      ys.push_back((in + pb + pa - win) / stride + 1);
    }
    xs.push_back(3);
    ys.push_back(3);
    Tensor x = rnd(Shape(xs), -3, 3, 71);
    Tensor up = rnd(Shape(ys), -1, 1, 72);
    for (PoolMode mode : {PoolMode::Max, PoolMode::Avg}) {
      const std::string name = std::string(mode == PoolMode::Max ? "max" : "avg") + " pool rank " + std::to_string(rank);
      Tensor ry = Tensor::empty(Shape(ys)), gy = Tensor::empty(Shape(ys), DType::Float32, kGpu);
      cpu().pool_forward(mode, x, ry, p);
      gpu().pool_forward(mode, to_gpu(x), gy, p);
      expect_close(ry, gy, kEwAtol, kEwRtol, name);
      Tensor rg = Tensor::empty(Shape(xs)), gg = Tensor::empty(Shape(xs), DType::Float32, kGpu);
      cpu().pool_backward(mode, x, ry, up, rg, p);
      gpu().pool_backward(mode, to_gpu(x), to_gpu(ry), to_gpu(up), gg, p);
      expect_close(rg, gg, kEwAtol, kEwRtol, name + " backward");
    }
  }
}

TEST(CudaParity, ConvolutionThroughCudnnForwardAndBackward) {
  REQUIRE_GPU();
  struct Case {
    int rank;
    int64_t stride, dilation, pb, pa, groups;
    bool bias, relu;
  };
  const std::vector<Case> cases = {{1, 1, 1, 1, 1, 1, true, false},   // 1 spatial axis, "same"
                                   {2, 2, 1, 0, 1, 1, true, true},    // asymmetric pad, bias + relu
                                   {2, 1, 2, 2, 2, 2, false, false},  // dilation, 2 groups
                                   {3, 1, 1, 1, 1, 1, true, false},   // 3 spatial axes
                                   {1, 2, 1, 0, 1, 1, false, true},   // 1D, stride 2, asymmetric pad
                                   {3, 2, 1, 0, 1, 2, true, true},    // 3D, stride 2, asymmetric, groups
                                   {2, 1, 1, 1, 1, 4, true, false},   // depthwise (groups = Cin)
                                   {2, 2, 1, 1, 1, 1, false, false}}; // symmetric pad with stride
  for (const Case& c : cases) {
    ConvParams p;
    p.groups = c.groups;
    const int64_t cin = 4, cout = c.groups == 4 ? 8 : 6, win = 3;
    std::vector<int64_t> xs = {2}, ws, ys = {2};
    for (int i = 0; i < c.rank; ++i) {
      const int64_t in = 7 - i;
      p.window.push_back(win);
      p.stride.push_back(c.stride);
      p.dilation.push_back(c.dilation);
      p.pad_before.push_back(c.pb);
      p.pad_after.push_back(c.pa);
      xs.push_back(in);
      ws.push_back(win);
      ys.push_back((in + c.pb + c.pa - c.dilation * (win - 1) - 1) / c.stride + 1);
    }
    xs.push_back(cin);
    ws.push_back(cin / c.groups);
    ws.push_back(cout);
    ys.push_back(cout);
    Tensor x = rnd(Shape(xs), -1, 1, 81), w = rnd(Shape(ws), -1, 1, 82), b = rnd(Shape({cout}), -1, 1, 83);
    Tensor bias = c.bias ? b : Tensor();
    const std::string name = "conv rank " + std::to_string(c.rank) + " groups " + std::to_string(c.groups);
    Tensor ry = Tensor::empty(Shape(ys)), gy = Tensor::empty(Shape(ys), DType::Float32, kGpu);
    cpu().conv_forward(x, w, bias, ry, p, c.relu);
    gpu().conv_forward(to_gpu(x), to_gpu(w), c.bias ? to_gpu(b) : Tensor(), gy, p, c.relu);
    expect_close(ry, gy, 1e-4, 1e-4, name);
    Tensor up = rnd(Shape(ys), -1, 1, 84);
    Tensor rgx = Tensor::empty(Shape(xs)), ggx = Tensor::empty(Shape(xs), DType::Float32, kGpu);
    cpu().conv_backward_data(up, w, rgx, p);
    gpu().conv_backward_data(to_gpu(up), to_gpu(w), ggx, p);
    expect_close(rgx, ggx, 1e-4, 1e-4, name + " backward data");
    Tensor rgw = Tensor::empty(Shape(ws)), ggw = Tensor::empty(Shape(ws), DType::Float32, kGpu);
    cpu().conv_backward_filter(x, up, rgw, p);
    gpu().conv_backward_filter(to_gpu(x), to_gpu(up), ggw, p);
    expect_close(rgw, ggw, 1e-4, 1e-4, name + " backward filter");
    // Every gradient in one call (the relu mask from y, the bias gradient as a column sum).
    Tensor fgx = Tensor::empty(Shape(xs)), fgw = Tensor::empty(Shape(ws)), fgb = Tensor::empty(Shape({cout}));
    Tensor hgx = Tensor::empty(Shape(xs), DType::Float32, kGpu), hgw = Tensor::empty(Shape(ws), DType::Float32, kGpu);
    Tensor hgb = Tensor::empty(Shape({cout}), DType::Float32, kGpu);
    cpu().conv_backward(x, w, ry, up, fgx, fgw, fgb, p, c.relu);
    gpu().conv_backward(to_gpu(x), to_gpu(w), to_gpu(ry), to_gpu(up), hgx, hgw, hgb, p, c.relu);
    expect_close(fgx, hgx, 1e-4, 1e-4, name + " fused backward gx");
    expect_close(fgw, hgw, 1e-4, 1e-4, name + " fused backward gw");
    expect_close(fgb, hgb, 1e-4, 1e-4, name + " fused backward gbias");
    // float64 runs through cuDNN's double kernels.
    Tensor x64 = Tensor::empty(x.shape(), DType::Float64), w64 = Tensor::empty(w.shape(), DType::Float64);
    Tensor b64 = Tensor::empty(b.shape(), DType::Float64), up64 = Tensor::empty(up.shape(), DType::Float64);
    cpu().copy(x, x64);
    cpu().copy(w, w64);
    cpu().copy(b, b64);
    cpu().copy(up, up64);
    Tensor ry64 = Tensor::empty(Shape(ys), DType::Float64), gy64 = Tensor::empty(Shape(ys), DType::Float64, kGpu);
    cpu().conv_forward(x64, w64, c.bias ? b64 : Tensor(), ry64, p, c.relu);
    gpu().conv_forward(to_gpu(x64), to_gpu(w64), c.bias ? to_gpu(b64) : Tensor(), gy64, p, c.relu);
    expect_close(ry64, gy64, 1e-10, 1e-10, name + " float64");
    Tensor rgx64 = Tensor::empty(Shape(xs), DType::Float64), ggx64 = Tensor::empty(Shape(xs), DType::Float64, kGpu);
    Tensor rgw64 = Tensor::empty(Shape(ws), DType::Float64), ggw64 = Tensor::empty(Shape(ws), DType::Float64, kGpu);
    Tensor none;
    cpu().conv_backward(x64, w64, ry64, up64, rgx64, rgw64, none, p, c.relu);
    gpu().conv_backward(to_gpu(x64), to_gpu(w64), to_gpu(ry64), to_gpu(up64), ggx64, ggw64, none, p, c.relu);
    expect_close(rgx64, ggx64, 1e-10, 1e-10, name + " float64 backward gx");
    expect_close(rgw64, ggw64, 1e-10, 1e-10, name + " float64 backward gw");
  }
}

// With benchmarking on, algorithms are timed (cudnnFind*AlgorithmEx) once per problem; whichever
// wins, the results must still match the CPU (TF32 stays off, so no tensor-op shortcuts).
TEST(CudaParity, ConvolutionWithTimedAlgorithmChoice) {
  REQUIRE_GPU();
#if RKERAS_HAVE_CUDA
  cuda::set_cudnn_benchmark(true);
  ConvParams p;
  p.window = {3, 3};
  p.stride = {1, 1};
  p.dilation = {1, 1};
  p.pad_before = {1, 1};
  p.pad_after = {1, 1};
  const Shape xs({8, 12, 12, 16}), ws({3, 3, 16, 32}), ys({8, 12, 12, 32});
  Tensor x = rnd(xs, -1, 1, 121), w = rnd(ws, -1, 1, 122), b = rnd(Shape({32}), -1, 1, 123), up = rnd(ys, -1, 1, 124);
  for (int rep = 0; rep < 2; ++rep) {  // the second round uses the cached choice
    Tensor ry = Tensor::empty(ys), gy = Tensor::empty(ys, DType::Float32, kGpu);
    cpu().conv_forward(x, w, b, ry, p, true);
    gpu().conv_forward(to_gpu(x), to_gpu(w), to_gpu(b), gy, p, true);
    expect_close(ry, gy, 1e-4, 1e-4, "timed conv forward");
    Tensor rgx = Tensor::empty(xs), rgw = Tensor::empty(ws), rgb = Tensor::empty(Shape({32}));
    Tensor ggx = Tensor::empty(xs, DType::Float32, kGpu), ggw = Tensor::empty(ws, DType::Float32, kGpu);
    Tensor ggb = Tensor::empty(Shape({32}), DType::Float32, kGpu);
    cpu().conv_backward(x, w, ry, up, rgx, rgw, rgb, p, true);
    gpu().conv_backward(to_gpu(x), to_gpu(w), to_gpu(ry), to_gpu(up), ggx, ggw, ggb, p, true);
    expect_close(rgx, ggx, 1e-4, 1e-4, "timed conv backward data");
    expect_close(rgw, ggw, 1e-3, 1e-4, "timed conv backward filter");  // sums over 8*12*12 positions
    expect_close(rgb, ggb, 1e-4, 1e-4, "timed conv bias gradient");
  }
  cuda::set_cudnn_benchmark(false);
#endif
}

TEST(CudaParity, ImageTransformAllFillModesAndInterpolations) {
  REQUIRE_GPU();
  Tensor images = rnd(Shape({2, 6, 5, 3}), 0, 1, 91);
  // Per image: a rotation-like affine map with a shift, and a projective one (c0, c1 != 0).
  Tensor transforms = Tensor::empty(Shape({2, 8}));
  cpu().copy(rk::testing::make(Shape({2, 8}), {0.9, -0.3, 1.25, 0.3, 0.9, -0.75, 0, 0,
                                               1.1, 0.2, -0.5, -0.1, 0.95, 0.5, 0.01, -0.02}),
             transforms);
  for (Interpolation interp : {Interpolation::Nearest, Interpolation::Bilinear})
    for (FillMode fill : {FillMode::Reflect, FillMode::Wrap, FillMode::Constant, FillMode::Nearest}) {
      const Shape os({2, 7, 4, 3});
      Tensor r = Tensor::empty(os), g = Tensor::empty(os, DType::Float32, kGpu);
      cpu().image_transform(images, transforms, r, interp, fill, 0.25);
      gpu().image_transform(to_gpu(images), to_gpu(transforms), g, interp, fill, 0.25);
      expect_close(r, g, kEwAtol, kEwRtol,
                   "image_transform interp " + std::to_string(static_cast<int>(interp)) + " fill " +
                       std::to_string(static_cast<int>(fill)));
    }
}

TEST(CudaParity, AllocatorCachesAndReportsStatistics) {
  REQUIRE_GPU();
  Allocator& a = allocator_for(kGpu);
  a.empty_cache();
  a.reset_peak();
  const AllocatorStats s0 = a.stats();
  { Tensor t = Tensor::empty(Shape({1000}), DType::Float32, kGpu); }
  { Tensor t = Tensor::empty(Shape({1000}), DType::Float32, kGpu); }  // served from the cache
  const AllocatorStats s1 = a.stats();
  EXPECT_EQ(s1.current, s0.current);
  EXPECT_GE(s1.peak, s0.current + 4000);
  EXPECT_EQ(s1.n_allocs, s0.n_allocs + 2);
  EXPECT_EQ(s1.n_cache_hits, s0.n_cache_hits + 1);
  EXPECT_GT(s1.cached, 0);
  a.empty_cache();
  EXPECT_EQ(a.stats().cached, 0);
}

// The memory limit makes the out-of-memory path deterministic: the hook runs once, the cache is
// emptied, and the OutOfMemoryError carries the allocator's figures; lifting the limit recovers.
TEST(CudaParity, AllocatorLimitGivesOutOfMemoryWithFigures) {
  REQUIRE_GPU();
#if RKERAS_HAVE_CUDA
  Allocator& a = allocator_for(kGpu);
  a.empty_cache();
  int hook_calls = 0;
  cuda::set_oom_hook([&hook_calls] { ++hook_calls; });
  cuda::set_memory_limit(0, a.stats().current + (8 << 20));  // 8 MiB above what is in use now
  {
    Tensor fits = Tensor::empty(Shape({1 << 20}), DType::Float32, kGpu);  // 4 MiB
    { Tensor freed = Tensor::empty(Shape({1 << 19}), DType::Float32, kGpu); }  // 2 MiB, then cached
    EXPECT_GT(a.stats().cached, 0);
    try {
      Tensor too_big = Tensor::empty(Shape({2 << 20}), DType::Float32, kGpu);  // 8 MiB more
      ADD_FAILURE() << "allocating past the limit did not throw";
    } catch (const OutOfMemoryError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("out of memory on cuda:0: tried to allocate 8.0 MiB"), std::string::npos) << msg;
      EXPECT_NE(msg.find("in use by rkeras"), std::string::npos) << msg;
      EXPECT_NE(msg.find("limit "), std::string::npos) << msg;
      EXPECT_NE(msg.find("free of"), std::string::npos) << msg;
    }
    EXPECT_EQ(hook_calls, 1);
    EXPECT_EQ(a.stats().cached, 0);  // the cache was emptied before the retry
    values(to_cpu(fits));            // what was allocated stays usable
  }
  cuda::set_memory_limit(0, 0);
  cuda::set_oom_hook(nullptr);
  Tensor big = Tensor::empty(Shape({2 << 20}), DType::Float32, kGpu);
  gpu().fill(big, 1.5);
  EXPECT_EQ(values(to_cpu(big))[12345], 1.5);
#endif
}

// Runs everywhere: without a usable GPU, asking for one is an UnsupportedError that says why.
TEST(CudaDevice, UnusableDeviceIsAClearError) {
#if RKERAS_HAVE_CUDA
  const cuda::Availability& a = cuda::availability();
  if (a.device_count > 0) GTEST_SKIP() << "a CUDA device is usable here";
  try {
    Tensor::empty(Shape({2}), DType::Float32, kGpu);
    FAIL() << "allocating on cuda:0 did not throw";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA requested but no usable GPU: " + a.reason), std::string::npos) << e.what();
  }
  EXPECT_THROW(backend_for(kGpu), UnsupportedError);
  EXPECT_GT(cuda::runtime_version(), 0);
  EXPECT_GT(cuda::cudnn_version(), 0);
#else
  EXPECT_THROW(Tensor::empty(Shape({2}), DType::Float32, kGpu), UnsupportedError);
  EXPECT_THROW(backend_for(kGpu), UnsupportedError);
#endif
}


// ------------------------------------------------------------------------------------------------
// cuDNN routes (softmax, pooling, activations) and the kernels kept beside them, in float32 and
// float64. Tolerances: float64 1e-10 abs + 1e-10 rel everywhere (cuDNN computes double data in
// double, in its own order); float32 as above, except softmax rows of >= 1000 classes 1e-5 abs + 5e-5 rel (cuDNN
// sums in float, the CPU in double) and cuDNN average pooling 1e-5 abs + 1e-5 rel (another
// summation order).

// Pairwise distinct values in [lo, hi) in a scrambled order (i * 7919 mod n), so max-pool windows
// have no ties: the CPU sends a tie's gradient to the first maximum, cuDNN to one of its choice.
Tensor distinct(const Shape& s, DType dt, double lo, double hi) {
  const int64_t n = s.numel();
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = lo + (hi - lo) * static_cast<double>((i * 7919) % n) / n;
  Tensor t = Tensor::empty(s, dt);
  cpu().copy(rk::testing::make(s, v), t);
  return t;
}

struct Tol {
  double atol, rtol;
};
Tol tol_for(DType dt, Tol f32) { return dt == DType::Float64 ? Tol{1e-10, 1e-10} : f32; }

TEST(CudaParityCudnn, SoftmaxWideRowsAndFloat64ThroughCudnn) {
  REQUIRE_GPU();
  struct Case {
    std::vector<int64_t> shape;
    int axis;
  };
  // Narrow and wide last axes (1000 and 5000 classes), an inner axis, and a leading axis.
  const std::vector<Case> cases = {{{4, 1000}, 1}, {{3, 5000}, 1}, {{5, 7, 6}, 1}, {{9, 4, 3}, 0}};
  for (DType dt : {DType::Float32, DType::Float64})
    for (const Case& c : cases) {
      const Shape s(c.shape);
      const bool wide = s[c.axis] >= 1000;
      const Tol tl = tol_for(dt, wide ? Tol{1e-5, 5e-5} : Tol{kRedAtol, kRedRtol});
      Tensor x = rnd(s, dt, -6, 6, 31), up = rnd(s, dt, -1, 1, 32);
      for (bool lg : {false, true}) {
        const std::string name = std::string(lg ? "log_softmax " : "softmax ") + dtype_name(dt) + " " + s.str() +
                                 " axis " + std::to_string(c.axis);
        Tensor ry = Tensor::empty(s, dt), gy = Tensor::empty(s, dt, kGpu);
        cpu().softmax(x, ry, c.axis, lg);
        gpu().softmax(to_gpu(x), gy, c.axis, lg);
        expect_close(ry, gy, tl.atol, tl.rtol, name);
        Tensor rg = Tensor::empty(s, dt), gg = Tensor::empty(s, dt, kGpu);
        cpu().softmax_backward(ry, up, rg, c.axis, lg);
        gpu().softmax_backward(to_gpu(ry), to_gpu(up), gg, c.axis, lg);
        expect_close(rg, gg, tl.atol, tl.rtol, name + " backward");
      }
    }
}

// The fused losses stay own kernels: one warp per row up to 1024 classes, one block per row above.
TEST(CudaParityCudnn, FusedSoftmaxLossesWarpAndBlockPerRow) {
  REQUIRE_GPU();
  for (DType dt : {DType::Float32, DType::Float64})
    for (int64_t c : {int64_t(3), int64_t(1000), int64_t(1024), int64_t(1025), int64_t(5000)}) {
      const int64_t rows = 37;  // not a multiple of the 8 rows a block of warps takes
      const Shape s2({rows, c});
      const Tol tl = tol_for(dt, Tol{kRedAtol, kRedRtol});
      const std::string name = std::string(dtype_name(dt)) + " " + std::to_string(c) + " classes";
      Tensor logits = rnd(s2, dt, -5, 5, 41), target = rnd(s2, dt, 0, 1, 42);
      Tensor rl = Tensor::empty(Shape({rows}), dt), rp = Tensor::empty(s2, dt);
      Tensor gl = Tensor::empty(Shape({rows}), dt, kGpu), gp = Tensor::empty(s2, dt, kGpu);
      cpu().softmax_cross_entropy(logits, target, rl, rp);
      gpu().softmax_cross_entropy(to_gpu(logits), to_gpu(target), gl, gp);
      expect_close(rl, gl, tl.atol, tl.rtol, "softmax_cross_entropy loss " + name);
      expect_close(rp, gp, tl.atol, tl.rtol, "softmax_cross_entropy probs " + name);
      std::vector<double> lv;
      for (int64_t i = 0; i < rows; ++i) lv.push_back(static_cast<double>((i * 131) % c));
      Tensor labels = Tensor::empty(Shape({rows}), DType::Int32);
      cpu().copy(rk::testing::make(Shape({rows}), lv), labels);
      cpu().sparse_softmax_cross_entropy(logits, labels, rl, rp);
      gpu().sparse_softmax_cross_entropy(to_gpu(logits), to_gpu(labels), gl, gp);
      expect_close(rl, gl, tl.atol, tl.rtol, "sparse_softmax_cross_entropy loss " + name);
      expect_close(rp, gp, tl.atol, tl.rtol, "sparse_softmax_cross_entropy probs " + name);
    }
}

// Symmetric geometries go through cuDNN; "same" with an even window (pad only after, which adds
// an output) stays the direct kernel. 1, 2 and 3 spatial axes, float32 and float64.
TEST(CudaParityCudnn, PoolingCudnnAndDirectKernelPaths) {
  REQUIRE_GPU();
  struct Case {
    const char* what;
    int64_t win, stride, pb, pa;
  };
  const std::vector<Case> cases = {
      {"cudnn: same, odd window", 3, 1, 1, 1},
      {"cudnn: valid, stride 2 with a leftover input", 2, 2, 0, 0},
      {"cudnn: stride > window (gaps without gradient)", 2, 3, 0, 0},
      {"cudnn: overlapping windows", 3, 2, 1, 1},
      {"direct kernel: same, even window", 2, 1, 0, 1},
      {"direct kernel: same, even window, stride 2", 4, 2, 1, 2}};
  for (DType dt : {DType::Float32, DType::Float64})
    for (int rank : {1, 2, 3})
      for (const Case& c : cases) {
        WindowGeometry p;
        std::vector<int64_t> xs = {2}, ys = {2};
        for (int i = 0; i < rank; ++i) {
          const int64_t in = 7 - i;
          p.window.push_back(c.win);
          p.stride.push_back(c.stride);
          p.dilation.push_back(1);
          p.pad_before.push_back(c.pb);
          p.pad_after.push_back(c.pa);
          xs.push_back(in);
          ys.push_back((in + c.pb + c.pa - c.win) / c.stride + 1);
        }
        xs.push_back(5);
        ys.push_back(5);
        Tensor x = distinct(Shape(xs), dt, -3, 3);
        Tensor up = rnd(Shape(ys), dt, -1, 1, 52);
        for (PoolMode mode : {PoolMode::Max, PoolMode::Avg}) {
          const Tol tl = tol_for(dt, mode == PoolMode::Max ? Tol{kEwAtol, kEwRtol} : Tol{kRedAtol, kRedRtol});
          const std::string name = std::string(mode == PoolMode::Max ? "max" : "avg") + " pool " + dtype_name(dt) +
                                   " rank " + std::to_string(rank) + " " + c.what;
          Tensor ry = Tensor::empty(Shape(ys), dt), gy = Tensor::empty(Shape(ys), dt, kGpu);
          cpu().pool_forward(mode, x, ry, p);
          gpu().pool_forward(mode, to_gpu(x), gy, p);
          expect_close(ry, gy, tl.atol, tl.rtol, name);
          Tensor rg = Tensor::empty(Shape(xs), dt), gg = Tensor::empty(Shape(xs), dt, kGpu);
          gpu().fill(gg, 123.0);  // gx is overwritten, also where no window reaches
          cpu().pool_backward(mode, x, ry, up, rg, p);
          gpu().pool_backward(mode, to_gpu(x), to_gpu(ry), to_gpu(up), gg, p);
          expect_close(rg, gg, tl.atol, tl.rtol, name + " backward");
        }
      }
}

// The activations routed to cuDNN, in float32 and float64, with the CPU's values at the edges:
// relu keeps NaN and has gradient 0 at exactly 0; relu6 keeps NaN; elu with alpha 1 and 0.3.
TEST(CudaParityCudnn, CudnnActivationsMatchTheCpu) {
  REQUIRE_GPU();
  struct Case {
    UnaryOp op;
    double a;
    const char* name;
  };
  const std::vector<Case> cases = {{UnaryOp::Relu, 0, "relu"},       {UnaryOp::Sigmoid, 0, "sigmoid"},
                                   {UnaryOp::Tanh, 0, "tanh"},       {UnaryOp::Elu, 1.0, "elu alpha 1"},
                                   {UnaryOp::Elu, 0.3, "elu alpha 0.3"}, {UnaryOp::Relu6, 0, "relu6"},
                                   {UnaryOp::Silu, 0, "silu"}};
  for (DType dt : {DType::Float32, DType::Float64})
    for (const Case& c : cases) {
      Tensor x = rnd(Shape({5, 41}), dt, -9, 9, 61);
      const Tol tl = tol_for(dt, Tol{kEwAtol, kEwRtol});
      UnaryParams p;
      p.a = c.a;
      const std::string name = std::string(c.name) + " " + dtype_name(dt);
      Tensor ry = Tensor::empty(x.shape(), dt), gy = Tensor::empty(x.shape(), dt, kGpu);
      cpu().unary(c.op, x, ry, p);
      gpu().unary(c.op, to_gpu(x), gy, p);
      expect_close(ry, gy, tl.atol, tl.rtol, name);
      Tensor up = rnd(x.shape(), dt, -1, 1, 62);
      Tensor rgx = Tensor::empty(x.shape(), dt), ggx = Tensor::empty(x.shape(), dt, kGpu);
      cpu().unary_backward(c.op, x, ry, up, rgx, p);
      gpu().unary_backward(c.op, to_gpu(x), to_gpu(ry), to_gpu(up), ggx, p);
      expect_close(rgx, ggx, tl.atol, tl.rtol, name + " backward");
    }
  // relu: NaN stays NaN, gradient at exactly 0 is 0, as on the CPU; relu6 keeps NaN too.
  const double nan = std::nan("");
  for (DType dt : {DType::Float32, DType::Float64})
    for (UnaryOp op : {UnaryOp::Relu, UnaryOp::Relu6}) {
      Tensor x = Tensor::empty(Shape({6}), dt), up = Tensor::empty(Shape({6}), dt);
      cpu().copy(rk::testing::make(Shape({6}), {-1.5, 0.0, 2.5, nan, 7.0, -0.0}), x);
      cpu().copy(rk::testing::make(Shape({6}), {1, 1, 1, 1, 1, 1}), up);
      Tensor ry = Tensor::empty(x.shape(), dt), gy = Tensor::empty(x.shape(), dt, kGpu);
      cpu().unary(op, x, ry, {});
      gpu().unary(op, to_gpu(x), gy, {});
      EXPECT_TRUE(std::isnan(values(to_cpu(gy))[3])) << "NaN through " << static_cast<int>(op);
      expect_close(ry, gy, 0, 0, std::string("edge values ") + dtype_name(dt));
      Tensor rgx = Tensor::empty(x.shape(), dt), ggx = Tensor::empty(x.shape(), dt, kGpu);
      cpu().unary_backward(op, x, ry, up, rgx, {});
      gpu().unary_backward(op, to_gpu(x), to_gpu(ry), to_gpu(up), ggx, {});
      EXPECT_EQ(values(to_cpu(ggx))[1], 0.0) << "gradient at 0 of " << static_cast<int>(op);
      // The gradient at NaN is 0 on the CPU (x > 0 is false); compare the non-NaN inputs exactly.
      std::vector<double> r = values(rgx), g = values(to_cpu(ggx));
      for (size_t i : {size_t(0), size_t(1), size_t(2), size_t(4), size_t(5)})
        EXPECT_EQ(r[i], g[i]) << "gradient element " << i << " of " << static_cast<int>(op) << " " << dtype_name(dt);
    }
}

}  // namespace
}  // namespace rk
