// ctc_loss: values against a brute-force sum over every frame-level path (tiny cases), hand-known
// values, Keras's documented test case, lengths, errors, and a float64 finite-difference gradcheck.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

using namespace rk;
using rk::testing::expect_values, rk::testing::gradcheck, rk::testing::make, rk::testing::rand, rk::testing::values;

// -log of the total probability of all paths over `frames` frames (softmax of logits [T, C],
// row-major) that collapse (merge repeats, then drop blanks) to `label`. Enumerates C^T paths.
double brute_force_ctc(const std::vector<double>& logits, int64_t frames, int64_t classes,
                       const std::vector<int64_t>& label, int64_t blank = 0) {
  std::vector<double> prob(static_cast<size_t>(frames * classes));
  for (int64_t t = 0; t < frames; ++t) {
    double z = 0;
    for (int64_t c = 0; c < classes; ++c) z += std::exp(logits[static_cast<size_t>(t * classes + c)]);
    for (int64_t c = 0; c < classes; ++c)
      prob[static_cast<size_t>(t * classes + c)] = std::exp(logits[static_cast<size_t>(t * classes + c)]) / z;
  }
  int64_t paths = 1;
  for (int64_t t = 0; t < frames; ++t) paths *= classes;
  double total = 0;
  for (int64_t code = 0; code < paths; ++code) {
    std::vector<int64_t> path(static_cast<size_t>(frames));
    int64_t r = code;
    double p = 1;
    for (int64_t t = 0; t < frames; ++t) {
      path[static_cast<size_t>(t)] = r % classes;
      r /= classes;
      p *= prob[static_cast<size_t>(t * classes + path[static_cast<size_t>(t)])];
    }
    std::vector<int64_t> collapsed;
    for (int64_t t = 0; t < frames; ++t) {
      const int64_t c = path[static_cast<size_t>(t)];
      if (c == blank) continue;
      if (t > 0 && path[static_cast<size_t>(t - 1)] == c) continue;
      collapsed.push_back(c);
    }
    if (collapsed == label) total += p;
  }
  return -std::log(total);
}

template <typename E>
void expect_message(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Ctc, HandKnownValues) {
  // One frame, uniform over 3 classes, label "1": p = 1/3.
  Tensor x = make({1, 1, 3}, {0, 0, 0});
  expect_values(ops::ctc_loss(make({1, 1}, {1}), x), {std::log(3.0)}, 1e-12);
  // Two frames, uniform over 2 classes, label "1": paths 11, 01, 10 -> 3/4.
  Tensor x2 = make({1, 2, 2}, {0, 0, 0, 0});
  expect_values(ops::ctc_loss(make({1, 1}, {1}), x2), {std::log(4.0 / 3.0)}, 1e-12);
  // Label "11" in two frames is impossible (needs a blank between the repeats): +Inf.
  expect_values(ops::ctc_loss(make({1, 2}, {1, 1}), x2), {std::numeric_limits<double>::infinity()});
  // Empty label: every frame blank.
  Tensor x3 = make({1, 2, 3}, {1, 2, 3, 0, -1, 2});
  const double lp0 = 1 - std::log(std::exp(1) + std::exp(2) + std::exp(3));
  const double lp1 = 0 - std::log(std::exp(0) + std::exp(-1) + std::exp(2));
  expect_values(ops::ctc_loss(make({1, 1}, {2}), x3, make({1}, {0}, DType::Int32)), {-(lp0 + lp1)}, 1e-12);
}

TEST(Ctc, MatchesBruteForceOverAllPaths) {
  const int64_t T = 5, C = 4;
  const std::vector<std::vector<int64_t>> labels = {{1}, {1, 2}, {2, 2}, {1, 2, 1}, {3, 3, 1}, {1, 1, 1}};
  for (size_t k = 0; k < labels.size(); ++k) {
    std::vector<double> lv = values(rand({T, C}, -2, 2, 10 + k));
    const int64_t L = static_cast<int64_t>(labels[k].size());
    std::vector<double> lab(labels[k].begin(), labels[k].end());
    lab.resize(4, 0);  // padded to max_length 4
    Tensor out = ops::ctc_loss(make({1, 4}, lab), make({1, T, C}, lv), make({1}, {double(L)}, DType::Int32));
    expect_values(out, {brute_force_ctc(lv, T, C, labels[k])}, 1e-10, 1e-10);
  }
}

TEST(Ctc, BatchWithLengthsAndFloat32) {
  // Sample 0 uses 3 of 4 frames and label "12"; sample 1 all frames and label "313".
  const int64_t T = 4, C = 4;
  std::vector<double> lv = values(rand({2, T, C}, -1.5, 1.5, 7));
  Tensor tgt = make({2, 3}, {1, 2, 0, 3, 1, 3});
  Tensor out = ops::ctc_loss(tgt, make({2, T, C}, lv), make({2}, {2, 3}, DType::Int32),
                             make({2}, {3, 4}, DType::Int32));
  std::vector<double> s0(lv.begin(), lv.begin() + 3 * C), s1(lv.begin() + T * C, lv.end());
  const std::vector<double> want = {brute_force_ctc(s0, 3, C, {1, 2}), brute_force_ctc(s1, T, C, {3, 1, 3})};
  expect_values(out, want, 1e-10, 1e-10);
  Tensor out32 = ops::ctc_loss(tgt, ops::cast(make({2, T, C}, lv), DType::Float32), make({2}, {2, 3}, DType::Int32),
                               make({2}, {3, 4}, DType::Int32));
  EXPECT_EQ(out32.dtype(), DType::Float32);
  expect_values(out32, want, 1e-5, 1e-5);
}

TEST(Ctc, KerasDocumentedCase) {
  // keras/src/losses/losses_test.py CTCTest: logits (arange(24) - 12) / 100, labels whose
  // non-zero count is the label length; the mean over the batch is 2.448645.
  std::vector<double> lv(24);
  for (int i = 0; i < 24; ++i) lv[static_cast<size_t>(i)] = (i - 12) / 100.0;
  Tensor out = ops::ctc_loss(make({2, 4}, {1, 2, 1, 0, 1, 2, 0, 2}), make({2, 4, 3}, lv),
                             make({2}, {3, 3}, DType::Int32));
  std::vector<double> v = values(out);
  EXPECT_NEAR((v[0] + v[1]) / 2, 2.448645, 1e-5);
}

TEST(Ctc, Gradcheck) {
  Tensor tgt = make({3, 3}, {1, 2, 2, 3, 0, 0, 2, 1, 3});
  Tensor tl = make({3}, {3, 1, 2}, DType::Int32), ol = make({3}, {5, 4, 5}, DType::Int32);
  gradcheck([&](const std::vector<Tensor>& in) { return ops::ctc_loss(tgt, in[0], tl, ol); },
            {rand({3, 5, 4}, -1, 1, 3)});
  // Frames beyond output_length get no gradient.
  Tensor x = rand({3, 5, 4}, -1, 1, 3);
  x.set_requires_grad(true);
  autograd::backward(ops::sum(ops::ctc_loss(tgt, x, tl, ol)));
  std::vector<double> g = values(autograd::grad(x));
  for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(g[static_cast<size_t>((1 * 5 + 4) * 4 + c)], 0.0);
}

TEST(Ctc, Errors) {
  Tensor x = rand({2, 3, 4});
  expect_message<ShapeError>([&] { ops::ctc_loss(make({2}, {1, 2}), x); }, "(batch_size, max_length)");
  expect_message<ShapeError>([&] { ops::ctc_loss(make({2, 2}, {1, 2, 1, 2}), rand({2, 4})); }, "num_classes");
  expect_message<ShapeError>([&] { ops::ctc_loss(make({3, 1}, {1, 2, 1}), x); }, "batch size");
  expect_message<IndexError>([&] { ops::ctc_loss(make({2, 1}, {1, 4}), x); }, "label 4 is out of range");
  expect_message<ValueError>([&] { ops::ctc_loss(make({2, 1}, {1, 1.5}), x); }, "whole numbers");
  expect_message<ValueError>([&] { ops::ctc_loss(make({2, 1}, {1, 1}), x, make({2}, {1, 2}, DType::Int32)); },
                             "target_length must be in [0, 1]");
}

}  // namespace

namespace {

TEST(Ctc, ThreadedBatchMatchesOneSampleAtATime) {
  // Big enough for the batch to be split across threads: each sample alone must agree, and so
  // must the gradients.
  const int64_t B = 6, T = 30, C = 6, L = 8;
  std::vector<double> tv(static_cast<size_t>(B * L));
  for (size_t i = 0; i < tv.size(); ++i) tv[i] = 1 + static_cast<double>((i * 7) % (C - 1));
  Tensor tgt = make({B, L}, tv);
  Tensor x = rand({B, T, C}, -2, 2, 21);
  x.set_requires_grad(true);
  Tensor all = ops::ctc_loss(tgt, x);
  autograd::backward(ops::sum(all));
  std::vector<double> g = values(autograd::grad(x)), xv = values(x), lv = values(all);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> xb(xv.begin() + b * T * C, xv.begin() + (b + 1) * T * C);
    std::vector<double> tb(tv.begin() + b * L, tv.begin() + (b + 1) * L);
    Tensor xs = make({1, T, C}, xb);
    xs.set_requires_grad(true);
    Tensor one = ops::ctc_loss(make({1, L}, tb), xs);
    EXPECT_NEAR(values(one)[0], lv[static_cast<size_t>(b)], 1e-12);
    autograd::backward(ops::sum(one));
    std::vector<double> gb = values(autograd::grad(xs));
    for (int64_t i = 0; i < T * C; ++i) EXPECT_NEAR(gb[static_cast<size_t>(i)], g[static_cast<size_t>(b * T * C + i)], 1e-12);
  }
}

}  // namespace
