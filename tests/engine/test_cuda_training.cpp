// End-to-end CPU vs CUDA training parity: one epoch of the GPU benchmark's models (bench/workloads.h:
// the MLP 784-256-128-10, the Keras mnist_convnet with its Dropout(0.5), the ResNet-style CNN with
// batch normalisation) trained through Trainer::run_epoch on the CPU and on the GPU, from the same
// initial weights (drawn on the host from one seed), on the same batches, with the same Philox stream
// for dropout (the CUDA backend draws the same numbers: test_cuda_parity.cpp). Every weight (BN moving
// statistics included), the running loss after every batch and the inference-mode logits afterwards
// must agree. tests/testthat/test-gpu.R checks the same through fit() in R (SGD lr 0.05, batch 16,
// no shuffling, tolerance 1e-4); this test adds the bench's models and its optimizer.
//
// Tolerances (float32; the backends differ in summation order: cuBLAS/cuDNN vs the CPU GEMM, and in
// libm vs CUDA exp/log):
//   SGD:  every weight element within 1e-4 abs + 1e-3 rel; running losses within 1e-4 rel; logits
//         within 1e-4 abs + 1e-3 rel (the R test's 1e-4).
//   Adam: the same bounds for all but 1 in 10,000 weight elements. Adam's first update is
//         lr * g / (|g| + eps), about lr * sign(g): an element whose gradient is a sum that cancels to
//         rounding level (|g| ~ 1e-9) may get the opposite sign on the other backend, and moves by up
//         to 2 lr in that step. Those rare elements must still be within 2 lr x steps; the losses
//         within 2e-4 rel and logits within 1e-3 abs + 1e-3 rel.
// Skips (with cudart's reason) where no GPU is usable, or in a build without the CUDA backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../../bench/workloads.h"
#include "autograd/autograd.h"
#include "cuda_test_util.h"

namespace rk {
namespace {

using rk::testing::kGpu, rk::testing::values;

// What one epoch on one device leaves: weights (on the host), running loss after each batch, and
// inference-mode outputs on the first rows of the data.
struct Epoch {
  std::vector<std::vector<double>> weights;
  std::vector<double> losses;
  std::vector<double> logits;
};

struct Case {
  std::string model;
  std::string optimizer;  // "sgd" (lr 0.05) or "adam" (lr 1e-3, eps 1e-7)
  int64_t n, batch;       // one epoch of n / batch steps, no shuffling
};

double lr_of(const Case& c) { return c.optimizer == "sgd" ? 0.05 : 1e-3; }

Epoch train_one_epoch(const Case& c, Device dev) {
  auto g = bench::build_model(c.model, dev, 11);
  nn::Trainer tr = bench::make_trainer(g, c.optimizer, lr_of(c));
  // The data are drawn on the host and copied, so both devices see the same numbers.
  bench::Data data = bench::synthetic_data(c.n, bench::input_shape(c.model), dev, 12);
  std::vector<std::vector<int32_t>> batches;
  for (int64_t s = 0; s < c.n; s += c.batch) {
    batches.emplace_back();
    for (int64_t i = s; i < s + c.batch; ++i) batches.back().push_back(static_cast<int32_t>(i));
  }
  Generator rng(13);  // dropout's Philox stream
  Epoch e;
  tr.run_epoch({data.x}, {data.y}, Tensor(), batches, rng, [&](int64_t, const std::vector<nn::LogEntry>& logs) {
    e.losses.push_back(logs[0].value);
    return true;
  });
  EXPECT_EQ(e.losses.size(), batches.size());
  autograd::NoGradGuard ng;
  for (const Tensor& w : g->weights) e.weights.push_back(values(ops::to_device(w, cpu_device())));
  Tensor rows = Tensor::empty(Shape({c.batch}), DType::Int32, cpu_device());
  for (int64_t i = 0; i < c.batch; ++i) rows.data<int32_t>()[i] = static_cast<int32_t>(i);
  Tensor head = ops::take(data.x, rows, 0);
  e.logits = values(ops::to_device(tr.predict_step({head})[0], cpu_device()));
  return e;
}

bool close(double a, double b, double atol, double rtol) { return std::fabs(a - b) <= atol + rtol * std::fabs(a); }

// Compares every element of `cpu` and `gpu`; all but `max_outlier_fraction` of them within
// atol + rtol |cpu|, every one within `outlier_bound`.
void expect_weights_close(const Epoch& cpu, const Epoch& gpu, double atol, double rtol, double max_outlier_fraction,
                          double outlier_bound) {
  ASSERT_EQ(cpu.weights.size(), gpu.weights.size());
  int64_t total = 0, outliers = 0;
  double worst = 0;
  for (size_t w = 0; w < cpu.weights.size(); ++w) {
    ASSERT_EQ(cpu.weights[w].size(), gpu.weights[w].size()) << "weight " << w;
    for (size_t i = 0; i < cpu.weights[w].size(); ++i) {
      const double a = cpu.weights[w][i], b = gpu.weights[w][i];
      ++total;
      worst = std::max(worst, std::fabs(a - b));
      if (close(a, b, atol, rtol)) continue;
      ++outliers;
      EXPECT_LE(std::fabs(a - b), outlier_bound) << "weight " << w << " element " << i << ": cpu " << a << " vs cuda " << b;
    }
  }
  EXPECT_LE(static_cast<double>(outliers), max_outlier_fraction * static_cast<double>(total))
      << outliers << " of " << total << " weight elements differ by more than " << atol << " + " << rtol
      << " rel (largest difference " << worst << ")";
}

void expect_all_close(const std::vector<double>& a, const std::vector<double>& b, double atol, double rtol,
                      const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < a.size() && bad < 5; ++i)
    if (!close(a[i], b[i], atol, rtol)) {
      ADD_FAILURE() << what << " " << i << ": cpu " << a[i] << " vs cuda " << b[i];
      ++bad;
    }
}

void check_parity(const Case& c) {
  const Epoch cpu = train_one_epoch(c, cpu_device());
  const Epoch gpu = train_one_epoch(c, kGpu);
  // The run must have trained: the loss moved (else equal weights would prove little).
  EXPECT_NE(cpu.losses.front(), cpu.losses.back());
  if (c.optimizer == "sgd") {
    expect_weights_close(cpu, gpu, 1e-4, 1e-3, 0.0, 0.0);
    expect_all_close(cpu.losses, gpu.losses, 0, 1e-4, "running loss after batch");
    expect_all_close(cpu.logits, gpu.logits, 1e-4, 1e-3, "logit");
  } else {
    const double steps = static_cast<double>(c.n / c.batch);
    expect_weights_close(cpu, gpu, 1e-4, 1e-3, 1e-4, 2 * lr_of(c) * steps);
    expect_all_close(cpu.losses, gpu.losses, 0, 2e-4, "running loss after batch");
    expect_all_close(cpu.logits, gpu.logits, 1e-3, 1e-3, "logit");
  }
}

TEST(CudaTraining, MlpOneEpochSgd) {
  REQUIRE_GPU();
  check_parity({"mlp", "sgd", 256, 32});
}

TEST(CudaTraining, MlpOneEpochAdam) {
  REQUIRE_GPU();
  check_parity({"mlp", "adam", 256, 32});
}

TEST(CudaTraining, ConvnetWithDropoutOneEpochSgd) {
  REQUIRE_GPU();
  check_parity({"convnet", "sgd", 256, 32});
}

TEST(CudaTraining, ConvnetWithDropoutOneEpochAdam) {
  REQUIRE_GPU();
  check_parity({"convnet", "adam", 256, 32});
}

TEST(CudaTraining, ResnetWithBatchNormOneEpochSgd) {
  REQUIRE_GPU();
  check_parity({"resnet", "sgd", 128, 16});
}

}  // namespace
}  // namespace rk
