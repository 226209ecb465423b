// softmax / log_softmax and the cross-entropy losses: values against formulas written out
// here and Keras's documented examples, error cases, and float64 gradchecks.
#include <cmath>
#include <limits>
#include <string>

#include "backend/backend.h"
#include "test_util.h"

namespace {

using namespace rk;
using rk::testing::expect_values, rk::testing::gradcheck, rk::testing::make, rk::testing::rand, rk::testing::values;

// softmax of `v` (shape dims) along `axis`, by the textbook formula.
std::vector<double> ref_softmax(const std::vector<double>& v, const std::vector<int64_t>& dims, int axis, bool log) {
  int64_t outer = 1, n = dims[static_cast<size_t>(axis)], inner = 1;
  for (int i = 0; i < axis; ++i) outer *= dims[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(axis) + 1; i < dims.size(); ++i) inner *= dims[i];
  std::vector<double> out(v.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += std::exp(v[static_cast<size_t>((o * n + i) * inner + j)]);
      for (int64_t i = 0; i < n; ++i) {
        size_t k = static_cast<size_t>((o * n + i) * inner + j);
        out[k] = log ? v[k] - std::log(s) : std::exp(v[k]) / s;
      }
    }
  return out;
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

TEST(Softmax, HandComputedValues) {
  Tensor x = make({2, 3}, {1, 2, 3, 0, 0, 0});
  double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  expect_values(ops::softmax(x), {std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z, 1.0 / 3, 1.0 / 3, 1.0 / 3},
                1e-12);
  expect_values(ops::log_softmax(x), {1 - std::log(z), 2 - std::log(z), 3 - std::log(z), -std::log(3.0),
                                      -std::log(3.0), -std::log(3.0)},
                1e-12);
  expect_values(ops::softmax(x, 0), {1 / (1 + std::exp(-1.0)), 1 / (1 + std::exp(-2.0)), 1 / (1 + std::exp(-3.0)),
                                     1 / (1 + std::exp(1.0)), 1 / (1 + std::exp(2.0)), 1 / (1 + std::exp(3.0))},
                1e-12);
}

TEST(Softmax, EveryAxisOfRank3BothDtypes) {
  std::vector<int64_t> dims{3, 4, 5};
  std::vector<double> v = rk::testing::seq(60, -3, 3, 2);
  for (DType dt : {DType::Float64, DType::Float32})
    for (int axis = -3; axis < 3; ++axis)
      for (bool log : {false, true}) {
        Tensor x = make(Shape(dims), v, dt);
        Tensor y = log ? ops::log_softmax(x, axis) : ops::softmax(x, axis);
        EXPECT_EQ(y.dtype(), dt);
        double tol = dt == DType::Float32 ? 1e-6 : 1e-13;
        expect_values(y, ref_softmax(v, dims, axis < 0 ? axis + 3 : axis, log), tol, tol);
      }
}

TEST(Softmax, LargeLogitsAreStableAndWideInnerBlocksWork) {
  Tensor x = make({1, 3}, {1000, 1001, 1002}, DType::Float32);
  expect_values(ops::softmax(x), ref_softmax({0, 1, 2}, {1, 3}, 1, false), 1e-6);
  expect_values(ops::log_softmax(x), ref_softmax({0, 1, 2}, {1, 3}, 1, true), 1e-5);
  // axis 0 of (7, 600): inner blocks wider than one chunk.
  std::vector<double> v = rk::testing::seq(4200, -2, 2, 8);
  expect_values(ops::softmax(make({7, 600}, v), 0), ref_softmax(v, {7, 600}, 0, false), 1e-13);
  expect_values(ops::log_softmax(make({7, 600}, v), 0), ref_softmax(v, {7, 600}, 0, true), 1e-13);
  expect_values(ops::softmax(make({600, 7}, v), 1), ref_softmax(v, {600, 7}, 1, false), 1e-13);
}

TEST(Softmax, Errors) {
  EXPECT_THROW(ops::softmax(make({2}, {1, 2}, DType::Int32)), TypeError);
  EXPECT_THROW(ops::softmax(make({2, 2}, {1, 2, 3, 4}), 2), IndexError);
}

TEST(SoftmaxGrad, EveryAxis) {
  Tensor x = rand({2, 3, 4});
  for (int axis : {0, 1, 2, -1}) {
    gradcheck([axis](const std::vector<Tensor>& in) { return ops::softmax(in[0], axis); }, {x});
    gradcheck([axis](const std::vector<Tensor>& in) { return ops::log_softmax(in[0], axis); }, {x});
  }
  // Through a broadcast input.
  gradcheck([](const std::vector<Tensor>& in) { return ops::softmax(ops::add(in[0], in[1]), -1); },
            {rand({3, 1}, -1, 1, 3), rand({4}, -1, 1, 4)});
}

// ---- categorical ------------------------------------------------------------------------

TEST(CategoricalCrossentropy, KerasDocumentedExample) {
  Tensor t = make({2, 3}, {0, 1, 0, 0, 0, 1}, DType::Float32);
  Tensor p = make({2, 3}, {0.05, 0.95, 0, 0.1, 0.8, 0.1}, DType::Float32);
  Tensor l = ops::categorical_crossentropy(t, p, false);
  EXPECT_EQ(l.shape(), Shape({2}));
  expect_values(l, {0.0513, 2.3026}, 1e-4);
  expect_values(l, {-std::log(0.95), -std::log(0.1)}, 1e-5);
}

TEST(CategoricalCrossentropy, ProbabilitiesAreRescaledAndClipped) {
  // Rows not summing to 1 are normalised first; a zero probability on the target is clipped to eps.
  Tensor t = make({2, 2}, {1, 0, 0, 1});
  Tensor p = make({2, 2}, {2, 6, 0.5, 0});
  double eps = 1e-7;
  expect_values(ops::categorical_crossentropy(t, p, false), {-std::log(0.25), -std::log(eps)}, 1e-9);
  expect_values(ops::categorical_crossentropy(t, p, false, 1e-3), {-std::log(0.25), -std::log(1e-3)}, 1e-9);
}

TEST(CategoricalCrossentropy, FromLogitsMatchesFormula) {
  std::vector<double> x = {2, -1, 0.5, 0.1, 0.2, 0.3}, t = {0.2, 0.7, 0.1, 0, 0, 1};
  Tensor l = ops::categorical_crossentropy(make({2, 3}, t), make({2, 3}, x), true);
  std::vector<double> want;
  for (int r = 0; r < 2; ++r) {
    double lse = std::log(std::exp(x[r * 3]) + std::exp(x[r * 3 + 1]) + std::exp(x[r * 3 + 2]));
    double s = 0;
    for (int c = 0; c < 3; ++c) s -= t[r * 3 + c] * (x[r * 3 + c] - lse);
    want.push_back(s);
  }
  expect_values(l, want, 1e-12);
  // Rank 3: the loss keeps the leading axes; float32 with large logits stays finite.
  Tensor l3 = ops::categorical_crossentropy(make({1, 2, 3}, t, DType::Float32), make({1, 2, 3}, x, DType::Float32),
                                            true);
  EXPECT_EQ(l3.shape(), Shape({1, 2}));
  expect_values(l3, want, 1e-5);
  Tensor big = ops::categorical_crossentropy(make({1, 2}, {0, 1}, DType::Float32),
                                             make({1, 2}, {1000, -1000}, DType::Float32), true);
  expect_values(big, {2000}, 1e-3);
}

TEST(CategoricalCrossentropy, ShapeAndTypeErrors) {
  Tensor t = Tensor::empty({32, 9}, DType::Float32), o = Tensor::empty({32, 10}, DType::Float32);
  expect_message<ShapeError>([&] { ops::categorical_crossentropy(t, o, true); },
                             "categorical_crossentropy: target shape (32, 9) does not match output shape (32, 10)");
  EXPECT_THROW(ops::categorical_crossentropy(t, o, false), ShapeError);
  EXPECT_THROW(ops::categorical_crossentropy(make({2}, {0, 1}, DType::Int32), make({2}, {0, 1}, DType::Int32), true),
               TypeError);
}

TEST(CategoricalCrossentropyGrad, FromLogitsAndFromProbabilities) {
  Tensor t = make({3, 4}, {0.1, 0.2, 0.3, 0.4, 0, 1, 0, 0, 0.5, 0, 0.5, 0});
  gradcheck([&](const std::vector<Tensor>& in) { return ops::categorical_crossentropy(t, in[0], true); },
            {rand({3, 4}, -2, 2, 5)});
  gradcheck([&](const std::vector<Tensor>& in) { return ops::categorical_crossentropy(t, in[0], false); },
            {rand({3, 4}, 0.1, 1, 6)});
  // Analytic: from logits, d loss / d logits = probs - target (per unit upstream gradient).
  Tensor x = rand({3, 4}, -2, 2, 5);
  x.set_requires_grad(true);
  autograd::backward(ops::sum(ops::categorical_crossentropy(t, x, true)));
  std::vector<double> p = values(ops::softmax(x.detach())), tv = values(t), want(12);
  for (size_t i = 0; i < 12; ++i) want[i] = p[i] - tv[i];
  expect_values(autograd::grad(x), want, 1e-12);
}

// ---- sparse -----------------------------------------------------------------------------

TEST(SparseCategoricalCrossentropy, KerasDocumentedExample) {
  Tensor p = make({2, 3}, {0.05, 0.95, 0, 0.1, 0.8, 0.1}, DType::Float32);
  expect_values(ops::sparse_categorical_crossentropy(make({2}, {1, 2}, DType::Int32), p, false), {0.0513, 2.3026},
                1e-4);
  // Float labels that are integral are accepted; a trailing size-1 axis is squeezed as Keras does.
  expect_values(ops::sparse_categorical_crossentropy(make({2}, {1, 2}, DType::Float32), p, false),
                {-std::log(0.95), -std::log(0.1)}, 1e-5);
  Tensor l = ops::sparse_categorical_crossentropy(make({2, 1}, {1, 2}, DType::Int32), p, false);
  EXPECT_EQ(l.shape(), Shape({2}));
  expect_values(l, {-std::log(0.95), -std::log(0.1)}, 1e-5);
}

TEST(SparseCategoricalCrossentropy, FromLogitsMatchesFormulaAndDenseForm) {
  std::vector<double> x = rk::testing::seq(2 * 3 * 5, -2, 2, 9);
  Tensor logits = make({2, 3, 5}, x);
  Tensor lab = make({2, 3}, {0, 4, 2, 1, 3, 3}, DType::Int32);
  Tensor l = ops::sparse_categorical_crossentropy(lab, logits, true);
  EXPECT_EQ(l.shape(), Shape({2, 3}));
  std::vector<double> labv = values(lab), want;
  for (int r = 0; r < 6; ++r) {
    double s = 0;
    for (int c = 0; c < 5; ++c) s += std::exp(x[static_cast<size_t>(r * 5 + c)]);
    want.push_back(std::log(s) - x[static_cast<size_t>(r * 5 + static_cast<int>(labv[static_cast<size_t>(r)]))]);
  }
  expect_values(l, want, 1e-12);
  Tensor dense = ops::categorical_crossentropy(ops::one_hot(lab, 5, DType::Float64), logits, true);
  expect_values(dense, want, 1e-12);
  expect_values(ops::sparse_categorical_crossentropy(lab, make({2, 3, 5}, x, DType::Float32), true), want, 1e-5);
}

TEST(SparseCategoricalCrossentropy, BadLabels) {
  Tensor o = rand({3, 10});
  expect_message<IndexError>(
      [&] { ops::sparse_categorical_crossentropy(make({3}, {1, 12, 0}, DType::Int32), o, true); },
      "label 12 is out of range for 10 classes");
  expect_message<IndexError>(
      [&] { ops::sparse_categorical_crossentropy(make({3}, {1, -1, 0}, DType::Int32), o, false); },
      "label -1 is out of range for 10 classes");
  expect_message<IndexError>(
      [&] { ops::sparse_categorical_crossentropy(make({3}, {1, 10, 0}, DType::Float64), o, true); },
      "label 10 is out of range for 10 classes");
  EXPECT_THROW(ops::sparse_categorical_crossentropy(make({3}, {1, 2.5, 0}), o, true), ValueError);
  EXPECT_THROW(ops::sparse_categorical_crossentropy(make({3}, {1, std::nan(""), 0}), o, true), ValueError);
  expect_message<ShapeError>(
      [&] { ops::sparse_categorical_crossentropy(make({4}, {1, 2, 0, 0}, DType::Int32), o, true); },
      "target shape (4,) does not match output shape (3, 10)");
  EXPECT_THROW(ops::sparse_categorical_crossentropy(make({3, 2}, {1, 2, 0, 0, 1, 1}, DType::Int32), o, true),
               ShapeError);
}

TEST(SparseCategoricalCrossentropy, BackendChecksLabelsBeforeWriting) {
  Backend& be = backend_for(cpu_device());
  Tensor logits = rand({2, 10}), labels = make({2}, {3, 12}, DType::Int32);
  Tensor loss = ops::full({2}, 7.0, DType::Float64), probs = ops::full({2, 10}, 7.0, DType::Float64);
  expect_message<IndexError>([&] { be.sparse_softmax_cross_entropy(logits, labels, loss, probs); },
                             "label 12 is out of range for 10 classes");
  expect_values(loss, {7, 7});
  for (double v : values(probs)) EXPECT_EQ(v, 7.0);
  Tensor g = ops::full({2, 10}, 7.0, DType::Float64);
  EXPECT_THROW(be.sparse_softmax_cross_entropy_backward(probs, labels, ops::ones({2}, DType::Float64), g),
               IndexError);
  for (double v : values(g)) EXPECT_EQ(v, 7.0);
}

TEST(SparseCategoricalCrossentropyGrad, FromLogitsAndFromProbabilities) {
  Tensor lab = make({2, 2}, {0, 3, 2, 2}, DType::Int32);
  gradcheck([&](const std::vector<Tensor>& in) { return ops::sparse_categorical_crossentropy(lab, in[0], true); },
            {rand({2, 2, 4}, -2, 2, 12)});
  gradcheck([&](const std::vector<Tensor>& in) { return ops::sparse_categorical_crossentropy(lab, in[0], false); },
            {rand({2, 2, 4}, 0.1, 1, 13)});
  // Analytic: probs - onehot.
  Tensor x = rand({2, 2, 4}, -2, 2, 12);
  x.set_requires_grad(true);
  autograd::backward(ops::sum(ops::sparse_categorical_crossentropy(lab, x, true)));
  std::vector<double> p = values(ops::softmax(x.detach())), lv = values(lab);
  for (size_t r = 0; r < 4; ++r) p[r * 4 + static_cast<size_t>(lv[r])] -= 1;
  expect_values(autograd::grad(x), p, 1e-12);
}

// ---- binary -----------------------------------------------------------------------------

TEST(BinaryCrossentropy, KerasDocumentedExamples) {
  // keras.losses.binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]) averages to 0.815.
  Tensor t = make({2, 2}, {0, 1, 0, 0}, DType::Float32);
  Tensor p = make({2, 2}, {0.6, 0.4, 0.4, 0.6}, DType::Float32);
  Tensor l = ops::binary_crossentropy(t, p, false);
  EXPECT_EQ(l.shape(), Shape({2, 2}));
  expect_values(l, {-std::log(0.4), -std::log(0.4), -std::log(0.6), -std::log(0.4)}, 1e-6);
  expect_values(ops::mean(l), {0.815}, 1e-3);
  // From logits: y_true [0, 1, 0, 0], y_pred [-18.6, 0.51, 2.94, -12.8] averages to 0.865.
  Tensor tl = make({4}, {0, 1, 0, 0}, DType::Float32);
  Tensor xl = make({4}, {-18.6, 0.51, 2.94, -12.8}, DType::Float32);
  expect_values(ops::mean(ops::binary_crossentropy(tl, xl, true)), {0.865}, 1e-3);
}

TEST(BinaryCrossentropy, FormulasAndClipping) {
  std::vector<double> x = {-3, -0.5, 0, 0.7, 40, -40}, t = {0, 1, 0.3, 1, 0, 1};
  Tensor l = ops::binary_crossentropy(make({2, 3}, t), make({2, 3}, x), true);
  std::vector<double> want;
  for (size_t i = 0; i < 6; ++i) {
    double s = 1 / (1 + std::exp(-x[i]));
    // -(t log s + (1 - t) log(1 - s)) in its overflow-free form for large |x|.
    double v = std::fabs(x[i]) > 30 ? std::max(x[i], 0.0) - x[i] * t[i] + std::log1p(std::exp(-std::fabs(x[i])))
                                    : -(t[i] * std::log(s) + (1 - t[i]) * std::log(1 - s));
    want.push_back(v);
  }
  expect_values(l, want, 1e-9);
  // Probabilities 0 and 1 are clipped to eps and 1 - eps.
  double eps = 1e-7;
  Tensor lp = ops::binary_crossentropy(make({3}, {1, 0, 0.5}), make({3}, {0, 1, 0.5}), false);
  expect_values(lp, {-std::log(eps), -std::log(eps), std::log(2.0)}, 1e-6, 1e-6);
  EXPECT_THROW(ops::binary_crossentropy(make({2}, {0, 1}), make({3}, {0.1, 0.2, 0.3}), false), ShapeError);
}

TEST(BinaryCrossentropyGrad, FromLogitsAndFromProbabilities) {
  Tensor t = make({2, 3}, {0, 1, 0.3, 1, 0, 0.5});
  gradcheck([&](const std::vector<Tensor>& in) { return ops::binary_crossentropy(t, in[0], true); },
            {rand({2, 3}, -3, 3, 21)});
  gradcheck([&](const std::vector<Tensor>& in) { return ops::binary_crossentropy(t, in[0], false); },
            {rand({2, 3}, 0.05, 0.95, 22)});
  // Analytic from logits: sigmoid(x) - t.
  Tensor x = rand({2, 3}, -3, 3, 21);
  x.set_requires_grad(true);
  autograd::backward(ops::sum(ops::binary_crossentropy(t, x, true)));
  std::vector<double> xv = values(x.detach()), tv = values(t), want;
  for (size_t i = 0; i < 6; ++i) want.push_back(1 / (1 + std::exp(-xv[i])) - tv[i]);
  expect_values(autograd::grad(x), want, 1e-12);
}

TEST(Losses, TargetsGetNoGradient) {
  Tensor t = make({1, 2}, {0, 1});
  t.set_requires_grad(true);
  Tensor x = make({1, 2}, {0.3, 0.7});
  x.set_requires_grad(true);
  autograd::backward(ops::sum(ops::categorical_crossentropy(t, x, false)));
  EXPECT_FALSE(autograd::grad(t).defined());
  EXPECT_TRUE(autograd::grad(x).defined());
}

}  // namespace
