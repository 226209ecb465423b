// The fake GPU (backend/fake): cuda:0 tensors in host memory, computed by the CPU backend. These
// tests check the forwarding, the aliases' lifetime, the allocator's out-of-memory figures and that
// the switch restores whatever served cuda:0 before.
#include <gtest/gtest.h>

#include <string>

#include "backend/backend.h"
#include "backend/fake/fake_device.h"
#include "test_util.h"

namespace rk {
namespace {

using testing::make;
using testing::values;

const Device kCuda{DeviceType::CUDA, 0};

// Switches the fake on for one test and back off (restoring the previous state) at the end.
struct FakeOn {
  bool was;
  FakeOn() : was(fake::enable_fake_cuda_device(true)) {}
  ~FakeOn() { fake::enable_fake_cuda_device(was); }
};

TEST(FakeDevice, OpsOnCuda0MatchTheCpuExactly) {
  FakeOn on;
  const Tensor a = make(Shape{3, 4}, testing::seq(12, -2, 2, 1), DType::Float32);
  const Tensor b = make(Shape{4, 5}, testing::seq(20, -2, 2, 2), DType::Float32);
  const Tensor ga = ops::to_device(a, kCuda), gb = ops::to_device(b, kCuda);
  ASSERT_EQ(ga.device(), kCuda);
  EXPECT_THROW(ga.data<float>(), Error);  // a cuda:0 tensor is not readable from the host
  const Tensor prod = ops::matmul(ga, gb);
  const Tensor soft = ops::softmax(ops::add(prod, ops::scalar(1.5, DType::Float32, kCuda)));
  const Tensor red = ops::sum(ops::tanh(soft), {1});
  for (const Tensor& t : {prod, soft, red}) EXPECT_EQ(t.device(), kCuda);
  const Tensor want = ops::sum(ops::tanh(ops::softmax(ops::add(ops::matmul(a, b), ops::scalar(1.5)))), {1});
  EXPECT_EQ(values(ops::to_device(red, cpu_device())), values(want));
  EXPECT_DOUBLE_EQ(ops::sum(red).item(), ops::sum(want).item());  // item() reads through the fake's copy
}

TEST(FakeDevice, GradientsAndOptimizerSlotsStayOnTheDevice) {
  FakeOn on;
  Tensor w = ops::to_device(make(Shape{3}, {0.5, -1, 2}, DType::Float32), kCuda);
  w.set_requires_grad(true);
  const Tensor loss = ops::sum(ops::square(w));
  autograd::backward(loss);
  const Tensor g = autograd::grad(w);
  ASSERT_TRUE(g.defined());
  EXPECT_EQ(g.device(), kCuda);
  EXPECT_EQ(values(ops::to_device(g, cpu_device())), (std::vector<double>{1, -2, 4}));
  std::vector<Tensor> slots{ops::zeros(Shape{3}, DType::Float32, kCuda), ops::zeros(Shape{3}, DType::Float32, kCuda)};
  OptimizerHyper h;
  h.lr = 0.1;
  Tensor p = w.detach();
  backend_of(p).optimizer_update(OptimizerRule::Adam, p, g, slots, h);
  Tensor pc = ops::to_device(make(Shape{3}, {0.5, -1, 2}, DType::Float32), cpu_device());
  std::vector<Tensor> sc{ops::zeros(Shape{3}), ops::zeros(Shape{3})};
  backend_for(cpu_device())
      .optimizer_update(OptimizerRule::Adam, pc, make(Shape{3}, {1, -2, 4}, DType::Float32), sc, h);
  EXPECT_EQ(values(ops::to_device(p, cpu_device())), values(pc));
  EXPECT_EQ(values(ops::to_device(slots[1], cpu_device())), values(sc[1]));
}

TEST(FakeDevice, CtcLossOfGpuLogitsComesBackToTheGpuWithItsGradient) {
  FakeOn on;
  const Tensor target = make(Shape{2, 2}, {1, 2, 2, 2}, DType::Int32);
  const Tensor logits = make(Shape{2, 4, 3}, testing::seq(24, -1, 1, 3), DType::Float32);
  Tensor lc = logits.detach(), lg = ops::to_device(logits, kCuda).detach();
  lc.set_requires_grad(true);
  lg.set_requires_grad(true);
  const Tensor want = ops::ctc_loss(target, lc), got = ops::ctc_loss(ops::to_device(target, kCuda), lg);
  EXPECT_EQ(got.device(), kCuda);
  EXPECT_EQ(values(ops::to_device(got, cpu_device())), values(want));
  autograd::backward(ops::sum(want));
  autograd::backward(ops::sum(got));
  ASSERT_TRUE(autograd::grad(lg).defined());
  EXPECT_EQ(autograd::grad(lg).device(), kCuda);
  EXPECT_EQ(values(ops::to_device(autograd::grad(lg), cpu_device())), values(autograd::grad(lc)));
}

TEST(FakeDevice, MixingACpuTensorIntoACudaKernelIsAnError) {
  FakeOn on;
  const Tensor a = ops::to_device(make(Shape{2}, {1, 2}, DType::Float32), kCuda);
  const Tensor c = make(Shape{2}, {3, 4}, DType::Float32);
  Tensor out = Tensor::empty(Shape{2}, DType::Float32, kCuda);
  try {
    backend_of(a).binary(BinaryOp::Add, a, c, out);
    ADD_FAILURE() << "a cpu operand reached the cuda:0 backend unnoticed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("got a tensor on cpu in binary"), std::string::npos) << e.what();
  }
  EXPECT_THROW(backend_for(Device{DeviceType::CUDA, 1}), UnsupportedError);
}

TEST(FakeDevice, AliasSharesBytesAndKeepsTheMemoryAlive) {
  FakeOn on;
  Tensor alias;
  void* bytes = nullptr;
  {
    Tensor t = ops::to_device(make(Shape{4}, {1, 2, 3, 4}, DType::Float32), kCuda);
    bytes = t.raw_data();
    alias = fake::host_alias(t, kCuda, "test");
    EXPECT_EQ(alias.device(), cpu_device());
    EXPECT_EQ(alias.raw_data(), bytes);
    EXPECT_FALSE(alias.impl()->storage->owns_memory());
  }
  // The original handle is gone; the alias still holds its storage, so the block is not freed.
  const int64_t in_use = fake::fake_allocator().stats().current;
  EXPECT_GE(in_use, 16);
  EXPECT_EQ(values(alias), (std::vector<double>{1, 2, 3, 4}));
  alias = Tensor();
  EXPECT_EQ(fake::fake_allocator().stats().current, in_use - 64);  // one 64-byte bucket back
  EXPECT_THROW(fake::host_alias(make(Shape{1}, {1}), kCuda, "test"), Error);
}

TEST(FakeDevice, OutOfMemoryHasTheCudaAllocatorsFiguresAndNoHostAllocation) {
  FakeOn on;
  fake::FakeCudaAllocator& a = fake::fake_allocator();
  a.empty_cache();
  const int64_t cap = a.capacity();
  a.set_capacity(int64_t(64) << 20);
  int hook_calls = 0;
  a.set_oom_hook([&] { ++hook_calls; });
  Tensor keep = Tensor::empty(Shape{1 << 20}, DType::Float32, kCuda);  // 4 MiB in use
  try {
    // 400 GB: far more than this machine has, so a host malloc of it would fail differently.
    Tensor::empty(Shape{100000, 1000000}, DType::Float32, kCuda);
    ADD_FAILURE() << "no OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    EXPECT_EQ(std::string(e.what()),
              "out of memory on cuda:0: tried to allocate 381470.0 MiB with 4.0 MiB in use by rkeras (peak " +
                  std::to_string(a.stats().peak / (1 << 20)) + ".0 MiB); the GPU has 60.0 MiB free of 64.0 MiB");
  }
  EXPECT_EQ(hook_calls, 1);
  EXPECT_EQ(a.stats().current, int64_t(4) << 20);
  EXPECT_EQ(a.free_bytes(), int64_t(60) << 20);
  EXPECT_THROW(a.set_capacity(0), ValueError);
  a.set_oom_hook(nullptr);
  a.set_capacity(cap);
}

TEST(FakeDevice, CacheStatsLikeTheCudaAllocator) {
  FakeOn on;
  fake::FakeCudaAllocator& a = fake::fake_allocator();
  a.empty_cache();
  a.reset_peak();
  const AllocatorStats s0 = a.stats();
  { Tensor t = Tensor::empty(Shape{1000}, DType::Float32, kCuda); }
  { Tensor t = Tensor::empty(Shape{1000}, DType::Float32, kCuda); }
  const AllocatorStats s1 = a.stats();
  EXPECT_EQ(s1.n_allocs - s0.n_allocs, 2);
  EXPECT_EQ(s1.n_cache_hits - s0.n_cache_hits, 1);
  EXPECT_EQ(s1.current, s0.current);
  EXPECT_GT(s1.cached, 0);
  EXPECT_GT(s1.peak, s0.current);
  a.empty_cache();
  a.reset_peak();
  EXPECT_EQ(a.stats().cached, 0);
  EXPECT_EQ(a.stats().peak, a.stats().current);
}

Allocator& dummy_provider(Device) { return cpu_allocator(); }
void dummy_to_host(const Tensor&, Tensor&) {}

TEST(FakeDevice, SwitchRestoresThePreviousProviderAndDefaultDevice) {
  const bool was = fake::enable_fake_cuda_device(false);
  const DeviceAllocatorProvider real = device_allocator_provider(DeviceType::CUDA);
  const DeviceToHostCopy real_copy = device_to_host_copy(DeviceType::CUDA);
  set_device_allocator_provider(DeviceType::CUDA, dummy_provider);
  set_device_to_host_copy(DeviceType::CUDA, dummy_to_host);
  EXPECT_FALSE(fake::enable_fake_cuda_device(true));
  EXPECT_TRUE(fake::fake_cuda_device_enabled());
  EXPECT_NE(device_allocator_provider(DeviceType::CUDA), dummy_provider);
  EXPECT_EQ(&allocator_for(kCuda), &fake::fake_allocator());
  EXPECT_EQ(&backend_for(kCuda), &fake::fake_backend(kCuda));
  EXPECT_TRUE(fake::enable_fake_cuda_device(true));  // already on: no change
  set_default_device(kCuda);
  EXPECT_TRUE(fake::enable_fake_cuda_device(false));
  EXPECT_FALSE(fake::fake_cuda_device_enabled());
  EXPECT_EQ(device_allocator_provider(DeviceType::CUDA), dummy_provider);
  EXPECT_EQ(device_to_host_copy(DeviceType::CUDA), dummy_to_host);
  EXPECT_EQ(default_device(), cpu_device());  // new state no longer goes to the fake
  set_device_allocator_provider(DeviceType::CUDA, real);
  set_device_to_host_copy(DeviceType::CUDA, real_copy);
  fake::enable_fake_cuda_device(was);
}

}  // namespace
}  // namespace rk
