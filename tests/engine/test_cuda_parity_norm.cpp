// CPU vs CUDA (cuDNN) parity of the batch-normalization backend methods and of the ops on top of
// them, as tests/engine/test_cuda_parity.cpp does for the other methods: the same inputs go
// through the CPU backend (the reference) and, copied to the GPU, through the CUDA backend. Without
// a usable GPU (or in a build without the CUDA backend) every test is SKIPPED with the reason.
//
// Tolerances (float32, eps = 1e-3, m = 256 to 1568 values per channel): mean and invstd 1e-5 abs +
// 1e-5 rel (another summation order); the variance 1e-5 abs + 1e-4 rel (cuDNN's is recovered from
// its float32 invstd as 1 / invstd^2 - eps); y, gx, ggamma, gbeta 1e-4 abs + 1e-4 rel (sums over
// the channel, then products with them). float64: 1e-10 abs + 1e-10 rel throughout.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda_test_util.h"

namespace rk {
namespace {

using rk::testing::cpu, rk::testing::gpu, rk::testing::kGpu, rk::testing::rnd, rk::testing::to_cpu,
    rk::testing::to_gpu, rk::testing::values;

void expect_close(const Tensor& ref, const Tensor& gpu_result, double atol, double rtol, const std::string& what) {
  const Tensor got = gpu_result.device() == cpu_device() ? gpu_result : to_cpu(gpu_result);
  ASSERT_EQ(ref.shape(), got.shape()) << what;
  const std::vector<double> a = values(ref), b = values(got);
  int bad = 0;
  for (size_t i = 0; i < a.size() && bad < 5; ++i) {
    if (!(std::fabs(a[i] - b[i]) <= atol + rtol * std::fabs(a[i]))) {
      ADD_FAILURE() << what << ": element " << i << ": cpu " << a[i] << " vs cuda " << b[i];
      ++bad;
    }
  }
}

struct Tol {
  double stat, var, data;
};
Tol tol_of(DType dt) { return dt == DType::Float64 ? Tol{1e-10, 1e-10, 1e-10} : Tol{1e-5, 1e-4, 1e-4}; }

// [outer, C, inner] views: channels-last (inner = 1) and channels-first (inner = 7 * 7).
const std::vector<Shape> kShapes = {Shape({256, 16, 1}), Shape({32, 12, 49})};

TEST(CudaParityNorm, ForwardTrainingAndBackward) {
  REQUIRE_GPU();
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (const Shape& s : kShapes) {
      const std::string what = s.str() + " " + dtype_name(dt);
      const Tol tol = tol_of(dt);
      const Shape cs({s[1]});
      const Tensor x = rnd(s, dt, 1, 5, 1), gamma = rnd(cs, dt, 0.5, 2, 2), beta = rnd(cs, dt, -1, 1, 3);
      const Tensor gy = rnd(s, dt, -1, 1, 4);
      const double eps = 1e-3;
      Tensor y = Tensor::empty(s, dt), mean = Tensor::empty(cs, dt), var = Tensor::empty(cs, dt);
      Tensor inv = Tensor::empty(cs, dt);
      cpu().batch_norm_forward_training(x, gamma, beta, eps, y, mean, var, inv);
      const Tensor dx = to_gpu(x), dgamma = to_gpu(gamma), dbeta = to_gpu(beta), dgy = to_gpu(gy);
      Tensor gy_ = Tensor::empty(s, dt, kGpu), gmean = Tensor::empty(cs, dt, kGpu);
      Tensor gvar = Tensor::empty(cs, dt, kGpu), ginv = Tensor::empty(cs, dt, kGpu);
      gpu().batch_norm_forward_training(dx, dgamma, dbeta, eps, gy_, gmean, gvar, ginv);
      expect_close(mean, gmean, tol.stat, tol.stat, "training mean " + what);
      expect_close(inv, ginv, tol.stat, tol.stat, "training invstd " + what);
      expect_close(var, gvar, tol.stat, tol.var, "training variance " + what);
      expect_close(y, gy_, tol.data, tol.data, "training y " + what);

      // Each backend's backward from its own saved statistics, as in a training step.
      Tensor gx = Tensor::empty(s, dt), gg = Tensor::empty(cs, dt), gb = Tensor::empty(cs, dt);
      cpu().batch_norm_backward(x, gy, gamma, mean, inv, eps, gx, gg, gb);
      Tensor dgx = Tensor::empty(s, dt, kGpu), dgg = Tensor::empty(cs, dt, kGpu), dgb = Tensor::empty(cs, dt, kGpu);
      gpu().batch_norm_backward(dx, dgy, dgamma, gmean, ginv, eps, dgx, dgg, dgb);
      expect_close(gx, dgx, tol.data, tol.data, "gx " + what);
      expect_close(gg, dgg, tol.data, tol.data, "ggamma " + what);
      expect_close(gb, dgb, tol.data, tol.data, "gbeta " + what);

      // Only the parameter gradients wanted (gx undefined: cuDNN writes it into scratch).
      Tensor none, dgg2 = Tensor::empty(cs, dt, kGpu), dgb2 = Tensor::empty(cs, dt, kGpu);
      gpu().batch_norm_backward(dx, dgy, dgamma, gmean, ginv, eps, none, dgg2, dgb2);
      expect_close(gg, dgg2, tol.data, tol.data, "ggamma without gx " + what);
      expect_close(gb, dgb2, tol.data, tol.data, "gbeta without gx " + what);
    }
  }
}

TEST(CudaParityNorm, ForwardInference) {
  REQUIRE_GPU();
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (const Shape& s : kShapes) {
      const Shape cs({s[1]});
      const Tensor x = rnd(s, dt, -3, 3, 5), gamma = rnd(cs, dt, 0.5, 2, 6), beta = rnd(cs, dt, -1, 1, 7);
      const Tensor mean = rnd(cs, dt, -1, 1, 8), var = rnd(cs, dt, 0.1, 3, 9);
      Tensor y = Tensor::empty(s, dt), gy = Tensor::empty(s, dt, kGpu);
      cpu().batch_norm_forward_inference(x, gamma, beta, mean, var, 1e-3, y);
      gpu().batch_norm_forward_inference(to_gpu(x), to_gpu(gamma), to_gpu(beta), to_gpu(mean), to_gpu(var), 1e-3, gy);
      const double t = dt == DType::Float64 ? 1e-12 : 1e-5;
      expect_close(y, gy, t, t, "inference y " + s.str() + " " + dtype_name(dt));
    }
  }
}

// The ops on GPU tensors: the tape calls the CUDA backward; gradients match the CPU's.
TEST(CudaParityNorm, OpsThroughTheTape) {
  REQUIRE_GPU();
  const Shape s({4, 6, 6, 8});
  const Tensor x = rnd(s, DType::Float32, -2, 2, 11), gamma = rnd(Shape({8}), DType::Float32, 0.5, 2, 12);
  const Tensor beta = rnd(Shape({8}), DType::Float32, -1, 1, 13), w = rnd(s, DType::Float32, -1, 1, 14);
  auto run = [&](bool on_gpu, bool training) {
    Tensor xx = on_gpu ? to_gpu(x) : ops::clone(x).detach();
    Tensor g = on_gpu ? to_gpu(gamma) : ops::clone(gamma).detach();
    Tensor b = on_gpu ? to_gpu(beta) : ops::clone(beta).detach();
    for (Tensor* t : {&xx, &g, &b}) t->set_requires_grad(true);
    const Tensor mm = ops::zeros(Shape({8}), DType::Float32, xx.device());
    const Tensor mv = ops::ones(Shape({8}), DType::Float32, xx.device());
    Tensor y = training ? ops::batch_norm_training(xx, g, b, -1, 1e-3).y
                        : ops::batch_norm_inference(xx, g, b, mm, mv, -1, 1e-3);
    autograd::backward(ops::sum(ops::multiply(y, on_gpu ? to_gpu(w) : w)));
    return std::vector<Tensor>{y.detach(), autograd::grad(xx), autograd::grad(g), autograd::grad(b)};
  };
  for (bool training : {true, false}) {
    const std::vector<Tensor> c = run(false, training), d = run(true, training);
    const char* names[] = {"y", "gx", "ggamma", "gbeta"};
    for (size_t i = 0; i < c.size(); ++i)
      expect_close(c[i], d[i], 1e-4, 1e-4, std::string(names[i]) + (training ? " (training)" : " (inference)"));
  }
}

}  // namespace
}  // namespace rk
