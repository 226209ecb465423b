// Core: shapes and broadcasting, allocator statistics and caching, RNG, tensor views.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <set>

#include "core/allocator.h"
#include "core/rng.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace rk {

TEST(Shape, NumelStridesAndPrinting) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s.strides(), (std::vector<int64_t>{12, 4, 1}));
  EXPECT_EQ(s.str(), "(2, 3, 4)");
  EXPECT_EQ(Shape{5}.str(), "(5,)");
  EXPECT_EQ(Shape().numel(), 1);
  EXPECT_EQ(Shape().str(), "()");
  EXPECT_EQ(s[-1], 4);
  EXPECT_THROW(Shape({2, -1}), ShapeError);
}

TEST(Shape, Broadcasting) {
  EXPECT_EQ(broadcast_shapes(Shape{2, 3}, Shape{3}, "add"), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes(Shape{2, 1}, Shape{1, 3}, "add"), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes(Shape(), Shape{4, 1, 2}, "add"), (Shape{4, 1, 2}));
  EXPECT_EQ(broadcast_shapes(Shape{0, 1}, Shape{1, 5}, "add"), (Shape{0, 5}));
  try {
    broadcast_shapes(Shape{2, 3}, Shape{4}, "add");
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3) and (4,)"), std::string::npos) << e.what();
    EXPECT_STREQ(e.r_class(), "rkeras_shape_error");
  }
}

TEST(Shape, Axes) {
  EXPECT_EQ(normalize_axis(-1, 3, "sum"), 2);
  EXPECT_THROW(normalize_axis(3, 3, "sum"), IndexError);
  EXPECT_THROW(normalize_axis(-4, 3, "sum"), IndexError);
  EXPECT_EQ(normalize_axes({2, -3, 2}, 3, "sum"), (std::vector<int>{0, 2}));
  EXPECT_EQ(normalize_axes({}, 2, "sum"), (std::vector<int>{0, 1}));
  EXPECT_EQ(reduced_shape(Shape{2, 3, 4}, {0, 2}, false), (Shape{3}));
  EXPECT_EQ(reduced_shape(Shape{2, 3, 4}, {0, 2}, true), (Shape{1, 3, 1}));
}

TEST(DType, NamesSizesPromotion) {
  EXPECT_EQ(dtype_size(DType::Float64), 8u);
  EXPECT_EQ(dtype_size(DType::Bool), 1u);
  EXPECT_EQ(dtype_from_name("int32"), DType::Int32);
  EXPECT_THROW(dtype_from_name("float8"), ValueError);
  EXPECT_EQ(promote_types(DType::Int32, DType::Float32), DType::Float32);
  EXPECT_EQ(promote_types(DType::Float64, DType::Float32), DType::Float64);
  EXPECT_EQ(promote_types(DType::Bool, DType::Int32), DType::Int32);
}

TEST(Allocator, BucketsBoundWaste) {
  for (size_t n : {1ul, 63ul, 64ul, 65ul, 1000ul, 4096ul, 5000ul, 123457ul, 5000000ul}) {
    size_t b = CpuCachingAllocator::bucket_size(n);
    EXPECT_GE(b, n);
    EXPECT_EQ(b % 64, 0u);
    if (n > 256) {
      EXPECT_LE(static_cast<double>(b), 1.25 * static_cast<double>(n) + (1 << 20));
    }
  }
}

TEST(Allocator, StatisticsAndCacheReuse) {
  CpuCachingAllocator a;
  void* p = a.allocate(1000);
  auto s = a.stats();
  size_t b = CpuCachingAllocator::bucket_size(1000);
  EXPECT_EQ(s.current, static_cast<int64_t>(b));
  EXPECT_EQ(s.peak, static_cast<int64_t>(b));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  std::memset(p, 1, 1000);
  a.deallocate(p, 1000);
  s = a.stats();
  EXPECT_EQ(s.current, 0);
  EXPECT_EQ(s.cached, static_cast<int64_t>(b));
  void* q = a.allocate(990);  // same bucket: served from the cache
  EXPECT_EQ(q, p);
  EXPECT_EQ(a.stats().n_cache_hits, 1);
  EXPECT_EQ(a.stats().cached, 0);
  a.deallocate(q, 990);
  a.empty_cache();
  EXPECT_EQ(a.stats().cached, 0);
  EXPECT_EQ(a.stats().peak, static_cast<int64_t>(b));
  a.reset_peak();
  EXPECT_EQ(a.stats().peak, 0);
}

TEST(Allocator, LimitGivesOutOfMemoryWithFiguresAfterHook) {
  CpuCachingAllocator a;
  a.set_limit(1 << 20);
  int hook_calls = 0;
  a.set_oom_hook([&] { hook_calls++; });
  void* p = a.allocate(512 * 1024);
  try {
    a.allocate(768 * 1024);
    FAIL() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("in use"), std::string::npos) << msg;
    EXPECT_NE(msg.find("limit 1.0 MiB"), std::string::npos) << msg;
  }
  EXPECT_EQ(hook_calls, 1);
  a.deallocate(p, 512 * 1024);
  // Freed (cached) memory is released to make room under the limit.
  void* r = a.allocate(768 * 1024);
  EXPECT_NE(r, nullptr);
  a.deallocate(r, 768 * 1024);
}

// A device with `room` bytes for the shared caching policy (the CUDA allocator's): counts what the
// policy asks of the device, so the order hook -> cache -> emptied cache -> error is observable.
class CountingDevice final : public CachingAllocator {
 public:
  int64_t room = int64_t(4) << 20;
  int frees = 0, releases = 0;
  ~CountingDevice() override { empty_cache(); }
  Device device() const override { return Device{DeviceType::CUDA, 3}; }

 protected:
  void* allocate_block(size_t bytes, const AllocatorStats& s) override {
    if (s.current + s.cached + static_cast<int64_t>(bytes) > room) return nullptr;
    return std::malloc(bytes);
  }
  void free_block(void* p) override {
    ++frees;
    std::free(p);
  }
  void before_release() override { ++releases; }
  bool device_memory(const AllocatorStats& s, int64_t& free_b, int64_t& total_b) const override {
    total_b = room;
    free_b = room - s.current - s.cached;
    return true;
  }
};

TEST(Allocator, PolicyRunsHookThenCacheThenEmptiesCacheThenThrows) {
  constexpr size_t MiB = size_t(1) << 20;
  CountingDevice a;
  void* victim = a.allocate(2 * MiB);
  a.deallocate(a.allocate(1 * MiB), 1 * MiB);  // 2 MiB in use, 1 MiB cached, peak 3 MiB
  int hook_calls = 0;
  a.set_oom_hook([&] {
    ++hook_calls;
    if (victim) a.deallocate(victim, 2 * MiB);  // re-enters the allocator, as R's GC does
  });
  // 2 + 1 + 2 > 4 MiB: the hook frees a 2 MiB block and the retry takes it from the cache, so the
  // cache is not emptied (nothing waits for the device).
  void* again = a.allocate(2 * MiB);
  EXPECT_EQ(again, victim);
  victim = nullptr;
  EXPECT_EQ(hook_calls, 1);
  EXPECT_EQ(a.stats().n_cache_hits, 1);
  EXPECT_EQ(a.releases, 0);
  EXPECT_EQ(a.stats().cached, static_cast<int64_t>(MiB));
  // 2 + 1 + 3 > 4 MiB, and still 2 + 3 > 4 once the cache is emptied: the error, with the figures.
  try {
    a.allocate(3 * MiB);
    ADD_FAILURE() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    EXPECT_EQ(std::string(e.what()),
              "out of memory on cuda:3: tried to allocate 3.0 MiB with 2.0 MiB in use by rkeras (peak 3.0 MiB); "
              "the GPU has 2.0 MiB free of 4.0 MiB");
  }
  EXPECT_EQ(hook_calls, 2);
  EXPECT_EQ(a.releases, 1);
  EXPECT_EQ(a.frees, 1);
  EXPECT_EQ(a.stats().cached, 0);
  EXPECT_EQ(a.stats().current, static_cast<int64_t>(2 * MiB));
  a.deallocate(again, 2 * MiB);
}

TEST(Allocator, PolicyLimitAlsoBindsCacheHits) {
  constexpr size_t MiB = size_t(1) << 20;
  CountingDevice a;
  a.deallocate(a.allocate(2 * MiB), 2 * MiB);
  void* p = a.allocate(2 * MiB);
  a.deallocate(a.allocate(2 * MiB), 2 * MiB);  // 2 MiB in use, 2 MiB cached
  a.set_limit(3 * MiB);
  // A cached block of the right size exists, but taking it would pass the limit.
  try {
    a.allocate(2 * MiB);
    ADD_FAILURE() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    EXPECT_EQ(std::string(e.what()),
              "out of memory on cuda:3: tried to allocate 2.0 MiB with 2.0 MiB in use by rkeras (peak 4.0 MiB), "
              "limit 3.0 MiB; the GPU has 2.0 MiB free of 4.0 MiB");
  }
  EXPECT_EQ(a.stats().cached, 0);  // emptied before the last try, as after a device failure
  a.set_limit(0);
  a.deallocate(p, 2 * MiB);
}

TEST(Rng, PhiloxKnownAnswer) {
  // Random123's published known-answer vectors for philox4x32-10: counter = 0, key = 0,
  // and counter/key all ones.
  uint32_t out[4];
  philox4x32(0, 0, out);
  EXPECT_EQ(out[0], 0x6627e8d5u);
  EXPECT_EQ(out[1], 0xe169c58du);
  EXPECT_EQ(out[2], 0xbc57ac4cu);
  EXPECT_EQ(out[3], 0x9b00dbd8u);
}

TEST(Rng, CounterStreamIsDeterministic) {
  Generator g(42);
  EXPECT_EQ(g.reserve(3), 0u);
  EXPECT_EQ(g.reserve(2), 3u);
  g.seed(42);
  EXPECT_EQ(g.offset(), 0u);
  uint32_t a[4], b[4], c[4];
  philox4x32(42, 7, a);
  philox4x32(42, 7, b);
  philox4x32(43, 7, c);
  EXPECT_EQ(std::memcmp(a, b, sizeof a), 0);
  EXPECT_NE(std::memcmp(a, c, sizeof a), 0);
  std::set<uint32_t> seen;
  for (uint64_t i = 0; i < 1000; ++i) {
    philox4x32(1, i, a);
    for (uint32_t v : a) seen.insert(v);
  }
  EXPECT_GT(seen.size(), 3990u);
  EXPECT_LT(uint_to_unit_float(0xffffffffu), 1.0f);
  EXPECT_EQ(uint_to_unit_float(0), 0.0f);
}

TEST(Tensor, EmptyViewDetachAndItem) {
  Tensor t = Tensor::empty(Shape{2, 3}, DType::Float32);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  for (int i = 0; i < 6; ++i) t.data<float>()[i] = static_cast<float>(i);
  Tensor v = t.view_as_shape(Shape{3, 2});
  EXPECT_EQ(v.raw_data(), t.raw_data());
  EXPECT_EQ(v.data<float>()[5], 5.0f);
  EXPECT_THROW(t.view_as_shape(Shape{4}), ShapeError);
  EXPECT_THROW(t.data<double>(), TypeError);
  EXPECT_THROW(t.item(), ShapeError);
  EXPECT_EQ(t.view_as_shape(Shape{6}).str(), "Tensor(shape=(6,), dtype=float32)");
  Tensor s = Tensor::empty(Shape(), DType::Int32);
  *s.data<int32_t>() = -7;
  EXPECT_EQ(s.item(), -7.0);
  EXPECT_THROW(s.set_requires_grad(true), TypeError);
  t.set_requires_grad(true);
  EXPECT_FALSE(t.detach().requires_grad());
  EXPECT_EQ(t.detach().raw_data(), t.raw_data());
  // Without a usable GPU (a CPU-only build, or no driver) a CUDA tensor is refused clearly; with
  // one, the tensor lives there.
  try {
    Tensor g = Tensor::empty(Shape{1}, DType::Float32, Device{DeviceType::CUDA, 0});
    EXPECT_EQ(g.device().str(), "cuda:0");
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos) << e.what();
  }
}

// Memory from the CPU allocator that says it belongs to cuda:0, so that the host-access check can
// be exercised on machines without a GPU.
class FakeDeviceAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override { return cpu_allocator().allocate(nbytes); }
  void deallocate(void* p, size_t nbytes) override { cpu_allocator().deallocate(p, nbytes); }
  AllocatorStats stats() const override { return {}; }
  void empty_cache() override {}
  void reset_peak() override {}
  Device device() const override { return Device{DeviceType::CUDA, 0}; }
};

TEST(Tensor, HostPointerToDeviceMemoryIsRefused) {
  FakeDeviceAllocator fake;
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = Shape{4};
  impl->storage = std::make_shared<Storage>(16, &fake);
  Tensor t(impl);
  EXPECT_EQ(t.device().str(), "cuda:0");
  EXPECT_NE(t.raw_data(), nullptr);  // the device backends' own access stays open
  try {
    (void)t.data<float>();
    ADD_FAILURE() << "data<float>() of a cuda:0 tensor did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "internal error: host access to a tensor on cuda:0; it must be copied to the CPU first (ops::to_device)");
  }
  EXPECT_THROW(t.data<double>(), TypeError);  // the dtype is checked first
}

TEST(Tensor, StorageReturnsToAllocator) {
  int64_t before = cpu_allocator().stats().current;
  {
    Tensor t = Tensor::empty(Shape{1000}, DType::Float64);
    EXPECT_GE(cpu_allocator().stats().current, before + 8000);
  }
  EXPECT_EQ(cpu_allocator().stats().current, before);
}

}  // namespace rk
