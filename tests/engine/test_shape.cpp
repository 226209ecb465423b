// Shape and data-movement ops: permute/transpose (against index loops, every dtype), reshape
// views, expand/squeeze, concatenate/stack, split, slice, copy_region; gradients and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>

#include "backend/backend.h"
#include "ops/ops.h"
#include "test_util.h"

namespace rk {
namespace {

using testing::expect_values;
using testing::gradcheck;
using testing::make;
using testing::rand;
using testing::values;

const DType kAllTypes[] = {DType::Float32, DType::Float64, DType::Int32, DType::Bool};

// Values 0..n-1 (mod 2 for bool, so both 0 and 1 appear in a recognisable pattern).
Tensor iota(const Shape& s, DType dt) {
  std::vector<double> v(static_cast<size_t>(s.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = dt == DType::Bool ? static_cast<double>((i * 7 / 3) % 2) : static_cast<double>(i);
  return make(s, v, dt);
}

// out[i0..] = x[j..] with j[perm[k]] = i[k], computed by explicit index loops.
std::vector<double> permute_reference(const Tensor& x, const std::vector<int>& perm) {
  const int r = x.rank();
  std::vector<double> xv = values(x), out(xv.size());
  std::vector<int64_t> od(static_cast<size_t>(r));
  for (int k = 0; k < r; ++k) od[static_cast<size_t>(k)] = x.size(perm[static_cast<size_t>(k)]);
  std::vector<int64_t> xs = x.shape().strides();
  std::vector<int64_t> idx(static_cast<size_t>(r), 0);
  for (size_t flat = 0; flat < out.size(); ++flat) {
    int64_t src = 0;
    for (int k = 0; k < r; ++k) src += idx[static_cast<size_t>(k)] * xs[static_cast<size_t>(perm[static_cast<size_t>(k)])];
    out[flat] = xv[static_cast<size_t>(src)];
    for (int k = r - 1; k >= 0; --k) {
      if (++idx[static_cast<size_t>(k)] < od[static_cast<size_t>(k)]) break;
      idx[static_cast<size_t>(k)] = 0;
    }
  }
  return out;
}

void check_all_perms(const Shape& s) {
  std::vector<int> perm(static_cast<size_t>(s.rank()));
  for (DType dt : kAllTypes) {
    Tensor x = iota(s, dt);
    std::iota(perm.begin(), perm.end(), 0);
    do {
      Tensor y = ops::transpose(x, perm);
      ASSERT_EQ(y.dtype(), dt);
      for (int k = 0; k < s.rank(); ++k) ASSERT_EQ(y.size(k), s[perm[static_cast<size_t>(k)]]);
      SCOPED_TRACE("shape " + s.str() + " dtype " + dtype_name(dt));
      expect_values(y, permute_reference(x, perm), 0, 0);
    } while (std::next_permutation(perm.begin(), perm.end()));
  }
}

// ---- transpose / permute ------------------------------------------------------------------

TEST(Transpose, HandComputed2D) {
  Tensor x = make(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor y = ops::transpose(x);
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  expect_values(y, {1, 4, 2, 5, 3, 6});
  Tensor b = ops::transpose(make(Shape{2, 2}, {1, 0, 0, 1}, DType::Bool));
  EXPECT_EQ(b.dtype(), DType::Bool);
  expect_values(b, {1, 0, 0, 1});
}

TEST(Transpose, HandComputed3D) {
  // x[i][j][k] = 100i + 10j + k, shape (2, 2, 3); perm (2, 0, 1): y[k][i][j] = x[i][j][k].
  std::vector<double> v;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k) v.push_back(100 * i + 10 * j + k);
  Tensor y = ops::transpose(make(Shape{2, 2, 3}, v, DType::Int32), {2, 0, 1});
  EXPECT_EQ(y.shape(), (Shape{3, 2, 2}));
  expect_values(y, {0, 10, 100, 110, 1, 11, 101, 111, 2, 12, 102, 112}, 0, 0);
}

TEST(Transpose, EveryPermutationRank3AndRank4AllDtypes) {
  check_all_perms(Shape{2, 3, 4});
  check_all_perms(Shape{3, 1, 5});
  check_all_perms(Shape{2, 3, 4, 5});
  check_all_perms(Shape{2, 1, 3, 4});
  check_all_perms(Shape{1, 3, 1, 4});
}

TEST(Transpose, LargeBlockedAndParallelPaths) {
  // Extents that are not multiples of the tile, and big enough to run multi-threaded.
  for (DType dt : kAllTypes) {
    Tensor x = iota(Shape{300, 257}, dt);
    expect_values(ops::transpose(x), permute_reference(x, {1, 0}), 0, 0);
    Tensor z = iota(Shape{3, 70, 45, 11}, dt);
    expect_values(ops::transpose(z, {0, 3, 1, 2}), permute_reference(z, {0, 3, 1, 2}), 0, 0);
    expect_values(ops::transpose(z, {2, 1, 3, 0}), permute_reference(z, {2, 1, 3, 0}), 0, 0);
  }
}

TEST(Transpose, NegativeAxesScalarsAndEmpty) {
  Tensor x = iota(Shape{2, 3, 4}, DType::Float64);
  expect_values(ops::transpose(x, {-1, 0, 1}), permute_reference(x, {2, 0, 1}), 0, 0);
  Tensor s = ops::transpose(make(Shape(), {7}));
  EXPECT_EQ(s.shape(), Shape());
  EXPECT_EQ(s.item(), 7);
  EXPECT_EQ(ops::transpose(Tensor::empty(Shape{0, 3})).shape(), (Shape{3, 0}));
}

TEST(Transpose, RejectsNonPermutations) {
  Tensor x = rand(Shape{2, 3, 4});
  EXPECT_THROW(ops::transpose(x, {0, 1}), ValueError);
  EXPECT_THROW(ops::transpose(x, {0, 1, 1}), ValueError);
  EXPECT_THROW(ops::transpose(x, {0, 1, 3}), ValueError);
  try {
    ops::transpose(x, {0, 0, 2});
    FAIL() << "no error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3, 4)"), std::string::npos) << e.what();
  }
}

TEST(Transpose, Gradients) {
  gradcheck([](const std::vector<Tensor>& in) { return ops::transpose(in[0], {2, 0, 1}); }, {rand(Shape{2, 3, 4})});
  gradcheck([](const std::vector<Tensor>& in) { return ops::transpose(in[0]); }, {rand(Shape{3, 5})});
  gradcheck([](const std::vector<Tensor>& in) { return ops::transpose(in[0], {1, 3, 0, 2}); },
            {rand(Shape{2, 3, 2, 3})});
}

// ---- reshape ---------------------------------------------------------------------------------

TEST(Reshape, IsAViewAndInfersMinusOne) {
  Tensor x = make(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor y = ops::reshape(x, {3, -1});
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  EXPECT_EQ(y.raw_data(), x.raw_data());
  expect_values(y, {1, 2, 3, 4, 5, 6});
  y.data<double>()[0] = 42;  // shared storage
  EXPECT_EQ(x.data<double>()[0], 42);
  EXPECT_EQ(ops::reshape(x, {-1}).shape(), (Shape{6}));
  EXPECT_EQ(ops::reshape(make(Shape{1}, {5}), {}).shape(), Shape());
  EXPECT_EQ(ops::reshape(Tensor::empty(Shape{0, 4}), {2, 0, 3}).shape(), (Shape{2, 0, 3}));
}

TEST(Reshape, Errors) {
  Tensor x = rand(Shape{2, 3});
  try {
    ops::reshape(x, {4, 2});
    FAIL() << "no error";
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "reshape: cannot reshape a tensor of shape (2, 3) (6 elements) into shape (4, 2)");
  }
  EXPECT_THROW(ops::reshape(x, {4, -1}), ShapeError);
  EXPECT_THROW(ops::reshape(x, {-1, -1}), ValueError);
  EXPECT_THROW(ops::reshape(x, {-2, -3}), ValueError);
  EXPECT_THROW(ops::reshape(Tensor::empty(Shape{0, 4}), {0, -1}), ShapeError);
}

TEST(Reshape, Gradient) {
  gradcheck([](const std::vector<Tensor>& in) { return ops::reshape(in[0], {3, -1, 2}); }, {rand(Shape{2, 3, 4})});
  // Transposing the reshaped view checks that the gradient arrives in the input's memory order.
  gradcheck([](const std::vector<Tensor>& in) { return ops::transpose(ops::reshape(in[0], {4, 3})); },
            {rand(Shape{2, 6})});
}

// ---- expand_dims / squeeze ---------------------------------------------------------------

TEST(ExpandSqueeze, ShapesAndValues) {
  Tensor x = make(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(ops::expand_dims(x, 0).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(ops::expand_dims(x, 1).shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(ops::expand_dims(x, 2).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(ops::expand_dims(x, -1).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(ops::expand_dims(x, -3).shape(), (Shape{1, 2, 3}));
  expect_values(ops::expand_dims(x, 1), {1, 2, 3, 4, 5, 6});
  Tensor y = Tensor::empty(Shape{1, 2, 1, 3, 1});
  EXPECT_EQ(ops::squeeze(y).shape(), (Shape{2, 3}));
  EXPECT_EQ(ops::squeeze(y, {2}).shape(), (Shape{1, 2, 3, 1}));
  EXPECT_EQ(ops::squeeze(y, {0, -1}).shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(ops::squeeze(make(Shape{1, 1}, {3})).shape(), Shape());
  EXPECT_EQ(ops::expand_dims(make(Shape(), {3}), 0).shape(), (Shape{1}));
}

TEST(ExpandSqueeze, Errors) {
  Tensor y = Tensor::empty(Shape{1, 2, 1});
  EXPECT_THROW(ops::squeeze(y, {1}), ShapeError);
  EXPECT_THROW(ops::squeeze(y, {3}), IndexError);
  EXPECT_THROW(ops::expand_dims(y, 4), IndexError);
  EXPECT_THROW(ops::expand_dims(y, -5), IndexError);
}

TEST(ExpandSqueeze, Gradients) {
  gradcheck([](const std::vector<Tensor>& in) { return ops::expand_dims(in[0], 1); }, {rand(Shape{2, 3})});
  gradcheck([](const std::vector<Tensor>& in) { return ops::squeeze(in[0]); }, {rand(Shape{2, 1, 3, 1})});
  gradcheck([](const std::vector<Tensor>& in) { return ops::squeeze(in[0], {-1}); }, {rand(Shape{2, 1, 3, 1})});
}

// ---- concatenate / stack -----------------------------------------------------------------

TEST(Concatenate, Values) {
  Tensor a = make(Shape{2, 2}, {1, 2, 3, 4});
  Tensor b = make(Shape{1, 2}, {5, 6});
  Tensor c0 = ops::concatenate({a, b}, 0);
  EXPECT_EQ(c0.shape(), (Shape{3, 2}));
  expect_values(c0, {1, 2, 3, 4, 5, 6});
  Tensor d = make(Shape{2, 3}, {7, 8, 9, 10, 11, 12});
  Tensor c1 = ops::concatenate({a, d}, -1);
  EXPECT_EQ(c1.shape(), (Shape{2, 5}));
  expect_values(c1, {1, 2, 7, 8, 9, 3, 4, 10, 11, 12});
  // Middle axis of rank 3.
  Tensor p = make(Shape{2, 1, 2}, {1, 2, 3, 4}), q = make(Shape{2, 2, 2}, {5, 6, 7, 8, 9, 10, 11, 12});
  expect_values(ops::concatenate({p, q}, 1), {1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12});
  // Bool stays bool; empty pieces are fine.
  Tensor bb = ops::concatenate({make(Shape{2}, {1, 0}, DType::Bool), make(Shape{1}, {1}, DType::Bool)}, 0);
  EXPECT_EQ(bb.dtype(), DType::Bool);
  expect_values(bb, {1, 0, 1});
  expect_values(ops::concatenate({a, Tensor::empty(Shape{0, 2}, DType::Float64)}, 0), {1, 2, 3, 4});
}

TEST(Concatenate, PromotesDtypes) {
  Tensor i = make(Shape{2}, {1, 2}, DType::Int32);
  Tensor f = make(Shape{1}, {0.5}, DType::Float32);
  Tensor d = make(Shape{1}, {0.25}, DType::Float64);
  Tensor c = ops::concatenate({i, f}, 0);
  EXPECT_EQ(c.dtype(), DType::Float32);
  expect_values(c, {1, 2, 0.5});
  Tensor c2 = ops::concatenate({i, f, d}, 0);
  EXPECT_EQ(c2.dtype(), DType::Float64);
  expect_values(c2, {1, 2, 0.5, 0.25});
  EXPECT_EQ(ops::concatenate({make(Shape{1}, {1}, DType::Bool), i}, 0).dtype(), DType::Int32);
}

TEST(Concatenate, Errors) {
  Tensor a = rand(Shape{2, 3});
  try {
    ops::concatenate({a, a, rand(Shape{2, 4})}, 0);
    FAIL() << "no error";
  } catch (const ShapeError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("input 2"), std::string::npos) << m;
    EXPECT_NE(m.find("(2, 4)"), std::string::npos) << m;
    EXPECT_NE(m.find("(2, 3)"), std::string::npos) << m;
  }
  EXPECT_THROW(ops::concatenate({a, rand(Shape{2, 3, 1})}, 0), ShapeError);
  EXPECT_THROW(ops::concatenate({}, 0), ValueError);
  EXPECT_THROW(ops::concatenate({make(Shape(), {1}), make(Shape(), {2})}, 0), ShapeError);
  EXPECT_THROW(ops::concatenate({a, a}, 2), IndexError);
}

TEST(Concatenate, Gradients) {
  gradcheck([](const std::vector<Tensor>& in) { return ops::concatenate({in[0], in[1], in[2]}, 1); },
            {rand(Shape{2, 1, 3}, -1, 1, 1), rand(Shape{2, 4, 3}, -1, 1, 2), rand(Shape{2, 2, 3}, -1, 1, 3)});
  gradcheck([](const std::vector<Tensor>& in) { return ops::concatenate({in[0], in[1]}, 0); },
            {rand(Shape{1, 3}, -1, 1, 4), rand(Shape{2, 3}, -1, 1, 5)});
  // The same tensor twice: both gradients accumulate into it.
  gradcheck([](const std::vector<Tensor>& in) { return ops::concatenate({in[0], in[0]}, -1); }, {rand(Shape{2, 3})});
  // A constant (non-grad) input among differentiable ones.
  Tensor k = rand(Shape{2, 2}, -1, 1, 7);
  gradcheck([k](const std::vector<Tensor>& in) { return ops::concatenate({k, in[0]}, 1); }, {rand(Shape{2, 3})});
}

TEST(Concatenate, GradientThroughFloat32Promotion) {
  Tensor a = make(Shape{2}, {1, 2}, DType::Float32);
  Tensor b = make(Shape{1}, {3}, DType::Float64);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  Tensor c = ops::concatenate({a, b}, 0);
  autograd::backward(c, make(Shape{3}, {10, 20, 30}));
  Tensor ga = autograd::grad(a), gb = autograd::grad(b);
  EXPECT_EQ(ga.dtype(), DType::Float32);
  expect_values(ga, {10, 20});
  expect_values(gb, {30});
}

TEST(Stack, ValuesErrorsAndGradient) {
  Tensor a = make(Shape{2}, {1, 2}), b = make(Shape{2}, {3, 4});
  Tensor s0 = ops::stack({a, b}, 0);
  EXPECT_EQ(s0.shape(), (Shape{2, 2}));
  expect_values(s0, {1, 2, 3, 4});
  Tensor s1 = ops::stack({a, b}, 1);
  EXPECT_EQ(s1.shape(), (Shape{2, 2}));
  expect_values(s1, {1, 3, 2, 4});
  EXPECT_EQ(ops::stack({a, b, a}, -1).shape(), (Shape{2, 3}));
  EXPECT_EQ(ops::stack({make(Shape(), {1}), make(Shape(), {2})}, 0).shape(), (Shape{2}));
  EXPECT_THROW(ops::stack({a, rand(Shape{3})}, 0), ShapeError);
  EXPECT_THROW(ops::stack({}, 0), ValueError);
  EXPECT_THROW(ops::stack({a, b}, 2), IndexError);
  gradcheck([](const std::vector<Tensor>& in) { return ops::stack({in[0], in[1], in[0]}, 1); },
            {rand(Shape{2, 3}, -1, 1, 1), rand(Shape{2, 3}, -1, 1, 2)});
}

// ---- split / slice -------------------------------------------------------------------------

TEST(Split, Values) {
  Tensor x = make(Shape{2, 5}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto parts = ops::split(x, {2, 0, 3}, 1);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(parts[1].shape(), (Shape{2, 0}));
  EXPECT_EQ(parts[2].shape(), (Shape{2, 3}));
  expect_values(parts[0], {0, 1, 5, 6});
  expect_values(parts[2], {2, 3, 4, 7, 8, 9});
  auto rows = ops::split(make(Shape{3, 2}, {1, 2, 3, 4, 5, 6}, DType::Int32), {1, 2}, 0);
  EXPECT_EQ(rows[1].dtype(), DType::Int32);
  expect_values(rows[1], {3, 4, 5, 6});
}

TEST(Split, ErrorsAndGradients) {
  Tensor x = rand(Shape{2, 5});
  EXPECT_THROW(ops::split(x, {2, 2}, 1), ValueError);
  EXPECT_THROW(ops::split(x, {6, -1}, 1), ValueError);
  EXPECT_THROW(ops::split(x, {5}, 2), IndexError);
  // Pieces recombined out of order, and one piece used twice.
  gradcheck(
      [](const std::vector<Tensor>& in) {
        auto p = ops::split(in[0], {1, 3, 2}, 1);
        return ops::concatenate({p[2], p[0], p[2], p[1]}, 1);
      },
      {rand(Shape{3, 6, 2})});
  // An unused piece contributes zero gradient.
  gradcheck([](const std::vector<Tensor>& in) { return ops::split(in[0], {2, 1}, 0)[1]; }, {rand(Shape{3, 2})});
}

TEST(Slice, Values) {
  Tensor x = make(Shape{3, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  Tensor s = ops::slice(x, {1, 1}, {2, 2});
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  expect_values(s, {5, 6, 9, 10});
  expect_values(ops::slice(x, {-1, 0}, {1, -1}), {8, 9, 10, 11});
  expect_values(ops::slice(x, {0, -2}, {-1, -1}), {2, 3, 6, 7, 10, 11});
  EXPECT_EQ(ops::slice(x, {3, 0}, {0, 4}).shape(), (Shape{0, 4}));
  Tensor b = ops::slice(make(Shape{4}, {1, 0, 1, 1}, DType::Bool), {1}, {2});
  EXPECT_EQ(b.dtype(), DType::Bool);
  expect_values(b, {0, 1});
  EXPECT_EQ(ops::slice(make(Shape(), {5}), {}, {}).item(), 5);
  // A slice is a copy, not a view.
  EXPECT_NE(s.raw_data(), x.raw_data());
}

TEST(Slice, Errors) {
  Tensor x = rand(Shape{3, 4});
  EXPECT_THROW(ops::slice(x, {0, 0}, {4, 1}), IndexError);
  EXPECT_THROW(ops::slice(x, {0, 3}, {1, 2}), IndexError);
  EXPECT_THROW(ops::slice(x, {-4, 0}, {1, 1}), IndexError);
  EXPECT_THROW(ops::slice(x, {5, 0}, {-1, 1}), IndexError);
  EXPECT_THROW(ops::slice(x, {0, 0}, {-2, 1}), IndexError);
  EXPECT_THROW(ops::slice(x, {0}, {1}), ValueError);
}

TEST(Slice, Gradients) {
  gradcheck([](const std::vector<Tensor>& in) { return ops::slice(in[0], {1, 0, 1}, {2, -1, 2}); },
            {rand(Shape{3, 2, 4})});
  gradcheck([](const std::vector<Tensor>& in) { return ops::slice(in[0], {-2}, {2}); }, {rand(Shape{5})});
}

// ---- copy_region (the kernel under concatenate/slice) ----------------------------------------

TEST(CopyRegion, BoxCopyAndAccumulate) {
  Backend& be = backend_for(cpu_device());
  Tensor src = make(Shape{2, 3, 4}, testing::seq(24, 0, 24));
  std::vector<double> sv = values(src);
  Tensor dst = ops::zeros(Shape{3, 3, 5}, DType::Float64);
  be.copy_region(src, {1, 0, 1}, dst, {2, 0, 0}, {1, 3, 3}, false);
  std::vector<double> dv = values(dst);
  for (int j = 0; j < 3; ++j)
    for (int k = 0; k < 5; ++k) {
      double want = k < 3 ? sv[static_cast<size_t>(12 + j * 4 + k + 1)] : 0;
      EXPECT_EQ(dv[static_cast<size_t>(30 + j * 5 + k)], want);
    }
  for (int i = 0; i < 30; ++i) EXPECT_EQ(dv[static_cast<size_t>(i)], 0);
  be.copy_region(src, {1, 0, 1}, dst, {2, 0, 0}, {1, 3, 3}, true);
  dv = values(dst);
  EXPECT_EQ(dv[30], 2 * sv[13]);
  // Full inner axes collapse into one run; accumulate only for floating types.
  Tensor d2 = ops::zeros(Shape{2, 3, 4}, DType::Float32);
  Tensor s32 = ops::cast(src, DType::Float32);
  be.copy_region(s32, {0, 0, 0}, d2, {0, 0, 0}, {2, 3, 4}, true);
  be.copy_region(s32, {0, 0, 0}, d2, {0, 0, 0}, {2, 3, 4}, true);
  for (size_t i = 0; i < 24; ++i) EXPECT_FLOAT_EQ(static_cast<float>(values(d2)[i]), static_cast<float>(2 * sv[i]));
  Tensor di = ops::zeros(Shape{2}, DType::Int32);
  EXPECT_THROW(be.copy_region(make(Shape{2}, {1, 2}, DType::Int32), {0}, di, {0}, {2}, true), TypeError);
}

}  // namespace
}  // namespace rk
