// Indexing: take (gather) with negative, duplicate and float indices, scatter_add, one_hot;
// gradients and errors.
#include <gtest/gtest.h>

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

Tensor ints(const Shape& s, const std::vector<double>& v) { return make(s, v, DType::Int32); }

// ---- take ------------------------------------------------------------------------------------

TEST(Take, AlongEachAxis) {
  Tensor x = make(Shape{3, 4}, {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23});
  Tensor r = ops::take(x, ints(Shape{2}, {2, 0}), 0);
  EXPECT_EQ(r.shape(), (Shape{2, 4}));
  expect_values(r, {20, 21, 22, 23, 0, 1, 2, 3});
  Tensor c = ops::take(x, ints(Shape{3}, {3, 3, 1}), 1);
  EXPECT_EQ(c.shape(), (Shape{3, 3}));
  expect_values(c, {3, 3, 1, 13, 13, 11, 23, 23, 21});
  // Index tensor of rank 2 lands in place of the axis; scalar index drops it.
  Tensor m = ops::take(x, ints(Shape{2, 2}, {0, 1, 2, 0}), -1);
  EXPECT_EQ(m.shape(), (Shape{3, 2, 2}));
  expect_values(m, {0, 1, 2, 0, 10, 11, 12, 10, 20, 21, 22, 20});
  Tensor s = ops::take(x, ints(Shape(), {1}), 0);
  EXPECT_EQ(s.shape(), (Shape{4}));
  expect_values(s, {10, 11, 12, 13});
  EXPECT_EQ(ops::take(x, ints(Shape{0}, {}), 1).shape(), (Shape{3, 0}));
}

TEST(Take, NegativeFloatAndDtypes) {
  Tensor x = make(Shape{4}, {5, 6, 7, 8}, DType::Int32);
  Tensor r = ops::take(x, ints(Shape{3}, {-1, -4, 1}), 0);
  EXPECT_EQ(r.dtype(), DType::Int32);
  expect_values(r, {8, 5, 6}, 0, 0);
  expect_values(ops::take(x, make(Shape{2}, {3, -2}, DType::Float32), 0), {8, 7}, 0, 0);
  expect_values(ops::take(x, make(Shape{2}, {0, 2}, DType::Float64), 0), {5, 7}, 0, 0);
  Tensor b = ops::take(make(Shape{3}, {1, 0, 1}, DType::Bool), ints(Shape{2}, {1, 2}), 0);
  EXPECT_EQ(b.dtype(), DType::Bool);
  expect_values(b, {0, 1});
  // The caller's index tensor is left as it was (wrapping works on a copy).
  Tensor idx = ints(Shape{1}, {-1});
  ops::take(x, idx, 0);
  EXPECT_EQ(idx.data<int32_t>()[0], -1);
}

TEST(Take, RankThreeMiddleAxisAgainstLoops) {
  Tensor x = rand(Shape{3, 5, 4});
  Tensor idx = ints(Shape{2, 3}, {4, 0, 4, -1, 2, 2});
  Tensor y = ops::take(x, idx, 1);
  ASSERT_EQ(y.shape(), (Shape{3, 2, 3, 4}));
  std::vector<double> xv = values(x), yv = values(y);
  const int id[6] = {4, 0, 4, 4, 2, 2};
  for (int a = 0; a < 3; ++a)
    for (int j = 0; j < 6; ++j)
      for (int c = 0; c < 4; ++c)
        EXPECT_EQ(yv[static_cast<size_t>((a * 6 + j) * 4 + c)], xv[static_cast<size_t>((a * 5 + id[j]) * 4 + c)]);
}

TEST(Take, Errors) {
  Tensor x = rand(Shape{3, 4});
  try {
    ops::take(x, ints(Shape{3}, {0, 4, 1}), 1);
    FAIL() << "no error";
  } catch (const IndexError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("index 4"), std::string::npos) << m;
    EXPECT_NE(m.find("size 4"), std::string::npos) << m;
  }
  EXPECT_THROW(ops::take(x, ints(Shape{1}, {-5}), 1), IndexError);
  EXPECT_THROW(ops::take(x, ints(Shape{1}, {0}), 2), IndexError);
  EXPECT_THROW(ops::take(make(Shape(), {1}), ints(Shape{1}, {0}), 0), IndexError);
  EXPECT_THROW(ops::take(x, make(Shape{1}, {0.5}), 0), ValueError);
  EXPECT_THROW(ops::take(x, make(Shape{1}, {std::nan("")}), 0), ValueError);
  EXPECT_THROW(ops::take(x, make(Shape{1}, {1}, DType::Bool), 0), TypeError);
}

TEST(Take, GradientsWithDuplicates) {
  Tensor dup = ints(Shape{5}, {1, 1, 0, 1, -1});
  gradcheck([dup](const std::vector<Tensor>& in) { return ops::take(in[0], dup, 0); }, {rand(Shape{3, 2})});
  Tensor idx2 = ints(Shape{2, 2}, {2, 2, 0, 2});
  gradcheck([idx2](const std::vector<Tensor>& in) { return ops::take(in[0], idx2, 1); }, {rand(Shape{2, 3, 3})});
  gradcheck([idx2](const std::vector<Tensor>& in) { return ops::take(in[0], idx2, -1); }, {rand(Shape{2, 3})});
  // Hand-computed: the gradient counts how often each row was taken.
  Tensor x = make(Shape{3}, {1, 2, 3});
  x.set_requires_grad(true);
  Tensor y = ops::take(x, ints(Shape{4}, {2, 2, 0, 2}), 0);
  autograd::backward(y, make(Shape{4}, {1, 10, 100, 1000}));
  expect_values(autograd::grad(x), {100, 0, 1011});
}

// ---- gather / scatter_add kernels --------------------------------------------------------------

TEST(Gather, BadIndexThrowsBeforeWriting) {
  Backend& be = backend_for(cpu_device());
  Tensor x = make(Shape{3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor out = ops::full(Shape{3, 2}, -7, DType::Float64);
  try {
    be.gather(x, ints(Shape{3}, {0, 1, 3}), 0, out);
    FAIL() << "no error";
  } catch (const IndexError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("3"), std::string::npos) << m;
  }
  expect_values(out, {-7, -7, -7, -7, -7, -7});
  Tensor gx = ops::zeros(Shape{3, 2}, DType::Float64);
  EXPECT_THROW(be.scatter_add(out, ints(Shape{3}, {0, -1, 1}), 0, gx), IndexError);
  expect_values(gx, {0, 0, 0, 0, 0, 0});
}

TEST(ScatterAdd, DuplicatesAccumulateLargeAndSmall) {
  Backend& be = backend_for(cpu_device());
  Tensor g = make(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor gx = ops::full(Shape{2, 2}, 0.5, DType::Float64);
  be.scatter_add(g, ints(Shape{3}, {1, 1, 0}), 1, gx);
  expect_values(gx, {3.5, 3.5, 6.5, 9.5});
  // Big enough to take the threaded path; compare with a sequential loop.
  const int64_t outer = 7, n = 5, m = 9, inner = 3000;
  Tensor gb = rand(Shape{outer, m, inner}, -1, 1, 3);
  std::vector<double> iv = {4, 0, 4, 2, 4, 1, 1, 3, 4};
  Tensor idx = ints(Shape{m}, iv);
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor g2 = ops::cast(gb, dt);
    Tensor out = ops::zeros(Shape{outer, n, inner}, dt);
    be.scatter_add(g2, idx, 1, out);
    std::vector<double> gv = values(g2), want(static_cast<size_t>(outer * n * inner), 0.0);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < m; ++j)
        for (int64_t i = 0; i < inner; ++i)
          want[static_cast<size_t>((o * n + static_cast<int64_t>(iv[static_cast<size_t>(j)])) * inner + i)] +=
              gv[static_cast<size_t>((o * m + j) * inner + i)];
    expect_values(out, want, 1e-5, 1e-5);
  }
}

// ---- one_hot -----------------------------------------------------------------------------------

TEST(OneHot, Values) {
  Tensor y = ops::one_hot(ints(Shape{3}, {0, 2, 1}), 3);
  EXPECT_EQ(y.shape(), (Shape{3, 3}));
  EXPECT_EQ(y.dtype(), DType::Float32);
  expect_values(y, {1, 0, 0, 0, 0, 1, 0, 1, 0});
  // Out-of-range classes (negative or >= depth) give all-zero rows.
  Tensor z = ops::one_hot(ints(Shape{2, 2}, {-1, 3, 1, 0}), 3, DType::Float64);
  EXPECT_EQ(z.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(z.dtype(), DType::Float64);
  expect_values(z, {0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0});
  expect_values(ops::one_hot(make(Shape{2}, {1, 0}, DType::Float32), 2), {0, 1, 1, 0});
  expect_values(ops::one_hot(make(Shape{2}, {1e12, -1e12}), 2), {0, 0, 0, 0});
  Tensor s = ops::one_hot(ints(Shape(), {1}), 4);
  EXPECT_EQ(s.shape(), (Shape{4}));
  expect_values(s, {0, 1, 0, 0});
  Tensor i = ops::one_hot(ints(Shape{2}, {1, 0}), 2, DType::Int32);
  EXPECT_EQ(i.dtype(), DType::Int32);
  expect_values(i, {0, 1, 1, 0});
}

TEST(OneHot, LargeThreaded) {
  const int64_t n = 5000, depth = 10;
  std::vector<double> iv(static_cast<size_t>(n));
  for (size_t k = 0; k < iv.size(); ++k) iv[k] = static_cast<double>((k * 7) % 12) - 1;  // includes -1, 10
  Tensor y = ops::one_hot(ints(Shape{n}, iv), depth);
  std::vector<double> yv = values(y);
  for (int64_t k = 0; k < n; ++k)
    for (int64_t c = 0; c < depth; ++c)
      ASSERT_EQ(yv[static_cast<size_t>(k * depth + c)], iv[static_cast<size_t>(k)] == static_cast<double>(c) ? 1 : 0);
}

TEST(OneHot, Errors) {
  EXPECT_THROW(ops::one_hot(ints(Shape{2}, {0, 1}), 0), ValueError);
  EXPECT_THROW(ops::one_hot(make(Shape{1}, {0.5}), 2), ValueError);
  EXPECT_THROW(ops::one_hot(make(Shape{1}, {1}, DType::Bool), 2), TypeError);
}

}  // namespace
}  // namespace rk
