// The tape: accumulation, no-grad, broadcasting, release of saved tensors, deep graphs.
#include <gtest/gtest.h>

#include "test_util.h"

namespace rk {
using testing::expect_values;
using testing::make;

TEST(Autograd, SharedInputAndAccumulation) {
  Tensor x = make(Shape{3}, {1, 2, 3});
  x.set_requires_grad(true);
  Tensor y = ops::sum(ops::multiply(x, x));  // d/dx = 2x
  autograd::backward(y);
  expect_values(autograd::grad(x), {2, 4, 6});
  // A second graph accumulates into the same .grad.
  autograd::backward(ops::sum(ops::multiply(x, ops::scalar(3.0, DType::Float64))));
  expect_values(autograd::grad(x), {5, 7, 9});
  autograd::set_grad(x, Tensor());
  EXPECT_FALSE(autograd::grad(x).defined());
}

TEST(Autograd, BroadcastingIsUndoneInBackward) {
  Tensor a = make(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = make(Shape{3}, {10, 20, 30});
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  autograd::backward(ops::sum(ops::multiply(a, b)));
  expect_values(autograd::grad(a), {10, 20, 30, 10, 20, 30});
  expect_values(autograd::grad(b), {5, 7, 9});
}

TEST(Autograd, NoGradRecordsNothing) {
  Tensor x = make(Shape{2}, {1, 2});
  x.set_requires_grad(true);
  {
    autograd::NoGradGuard ng;
    EXPECT_FALSE(autograd::grad_enabled());
    Tensor y = ops::exp(x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(autograd::grad_fn(y), nullptr);
  }
  EXPECT_TRUE(autograd::grad_enabled());
  Tensor z = ops::exp(x);
  EXPECT_TRUE(z.requires_grad());
  ASSERT_NE(autograd::grad_fn(z), nullptr);
  EXPECT_EQ(autograd::grad_fn(z)->name, "exp");
}

TEST(Autograd, UnusedBranchGetsNoGradient) {
  Tensor x = make(Shape{2}, {1, 2}), w = make(Shape{2}, {3, 4});
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  Tensor unused = ops::multiply(x, x);
  autograd::backward(ops::sum(ops::multiply(w, ops::scalar(2.0, DType::Float64))));
  EXPECT_FALSE(autograd::grad(x).defined());
  expect_values(autograd::grad(w), {2, 2});
}

TEST(Autograd, ReleasesSavedTensorsAfterBackward) {
  Tensor x = testing::rand(Shape{1000, 100});  // 0.8 MB
  x.set_requires_grad(true);
  const int64_t block = static_cast<int64_t>(CpuCachingAllocator::bucket_size(800000));
  int64_t base = cpu_allocator().stats().current;
  Tensor loss;
  {
    // exp and tanh must each keep a 0.8 MB tensor for their backward.
    loss = ops::sum(ops::tanh(ops::exp(ops::multiply(x, x))));
  }
  EXPECT_GE(cpu_allocator().stats().current - base, 2 * block);
  autograd::backward(loss);
  // The graph still hangs off `loss`, but its saved tensors are gone: only x's new .grad remains.
  EXPECT_LE(cpu_allocator().stats().current - base, block + 4096);
  EXPECT_THROW(autograd::backward(loss), AutogradError);
}

TEST(Autograd, RetainGraphAllowsASecondBackward) {
  Tensor x = make(Shape{2}, {1, 2});
  x.set_requires_grad(true);
  Tensor y = ops::sum(ops::exp(x));
  autograd::backward(y, Tensor(), /*retain_graph=*/true);
  autograd::backward(y);
  expect_values(autograd::grad(x), {2 * std::exp(1.0), 2 * std::exp(2.0)}, 1e-12, 1e-12);
}

TEST(Autograd, RootChecks) {
  Tensor x = make(Shape{2}, {1, 2});
  EXPECT_THROW(autograd::backward(x), AutogradError);  // no history
  x.set_requires_grad(true);
  Tensor y = ops::exp(x);
  EXPECT_THROW(autograd::backward(y), AutogradError);  // non-scalar root needs a gradient
  EXPECT_THROW(autograd::backward(y, make(Shape{3}, {1, 1, 1})), ShapeError);
  autograd::backward(y, make(Shape{2}, {1, 0}));
  expect_values(autograd::grad(x), {std::exp(1.0), 0}, 1e-12, 1e-12);
}

TEST(Autograd, DeepChainNeedsNoRecursion) {
  Tensor x = make(Shape{1}, {0});
  x.set_requires_grad(true);
  Tensor y = x;
  Tensor one = ops::scalar(1.0, DType::Float64);
  for (int i = 0; i < 100000; ++i) y = ops::add(y, one);
  autograd::backward(y);
  expect_values(autograd::grad(x), {1});
  y = Tensor();  // drops a 100k-deep graph
}

TEST(Autograd, LeafUsedInTwoPlacesAndDiamond) {
  // f = sum(exp(x) * x): d/dx = exp(x) * (1 + x)
  Tensor x = make(Shape{3}, {-1, 0, 0.5});
  x.set_requires_grad(true);
  autograd::backward(ops::sum(ops::multiply(ops::exp(x), x)));
  std::vector<double> want;
  for (double v : {-1.0, 0.0, 0.5}) want.push_back(std::exp(v) * (1 + v));
  expect_values(autograd::grad(x), want, 1e-12, 1e-12);
  testing::gradcheck([](const std::vector<Tensor>& in) { return ops::multiply(ops::exp(in[0]), in[0]); },
                     {make(Shape{3}, {-1, 0, 0.5})});
}

}  // namespace rk
