// Losses and metrics against their Keras 3 formulas (sample weights, label smoothing, label
// shapes), gradient checks of the losses, and the Trainer on small graphs: a hand-computed first
// step, decreasing loss, logs, multi-output names, and a failing step that leaves weights untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "nn/graph.h"
#include "nn/trainer.h"
#include "test_util.h"

using namespace rk;
using rk::testing::attrs, rk::testing::expect_values, rk::testing::gradcheck, rk::testing::make, rk::testing::rand,
    rk::testing::values;

namespace {

nn::LossSpec loss(const std::string& kind, nn::Attrs a = {}) { return nn::LossSpec{kind, std::move(a), 1.0}; }

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

}  // namespace

// ------------------------------------------------------------------------------------------ losses

TEST(TrainerLosses, RegressionLossesPerSample) {
  Tensor t = make(Shape({2, 3}), {0, 1, 2, 3, 4, 5});
  Tensor p = make(Shape({2, 3}), {0.5, 1, 1, 3, 2, 8});
  expect_values(nn::loss_per_sample(loss("mean_squared_error"), t, p), {(0.25 + 0 + 1) / 3, (0 + 4 + 9) / 3.0});
  expect_values(nn::loss_per_sample(loss("mae"), t, p), {1.5 / 3, 5 / 3.0});
  // Huber(delta = 1.5): 0.5 e^2 where |e| <= delta, else delta |e| - 0.5 delta^2.
  auto hub = [](double e) { e = std::fabs(e); return e <= 1.5 ? 0.5 * e * e : 1.5 * e - 0.5 * 2.25; };
  expect_values(nn::loss_per_sample(loss("huber", attrs({{"delta", 1.5}})), t, p),
                {(hub(0.5) + hub(0) + hub(1)) / 3, (hub(0) + hub(2) + hub(3)) / 3});
  // y_true [N] against y_pred [N, 1] is aligned as Keras does (expand to [N, 1]).
  Tensor t1 = make(Shape({3}), {1, 2, 3});
  Tensor p1 = make(Shape({3, 1}), {1, 1, 1});
  expect_values(nn::loss_per_sample(loss("mse"), t1, p1), {0, 1, 4});
  EXPECT_THROW(nn::loss_per_sample(loss("mse"), make(Shape({2, 2}), {1, 2, 3, 4}), t), ShapeError);
  EXPECT_THROW(nn::loss_per_sample(loss("hinge_x"), t, p), ValueError);
}

TEST(TrainerLosses, BinaryCrossentropyAndSmoothing) {
  Tensor t = make(Shape({2, 2}), {1, 0, 0, 1});
  Tensor p = make(Shape({2, 2}), {0.9, 0.2, 0.3, 0.6});
  auto bce = [](double y, double q) { return -(y * std::log(q) + (1 - y) * std::log(1 - q)); };
  expect_values(nn::loss_per_sample(loss("binary_crossentropy"), t, p),
                {(bce(1, 0.9) + bce(0, 0.2)) / 2, (bce(0, 0.3) + bce(1, 0.6)) / 2}, 1e-9);
  // label_smoothing 0.2: y * 0.8 + 0.1.
  nn::Attrs ls = attrs({{"label_smoothing", 0.2}});
  expect_values(nn::loss_per_sample(loss("binary_crossentropy", ls), t, p),
                {(bce(0.9, 0.9) + bce(0.1, 0.2)) / 2, (bce(0.1, 0.3) + bce(0.9, 0.6)) / 2}, 1e-9);
  // from_logits.
  Tensor z = make(Shape({2, 2}), {2, -1, 0.5, -3});
  expect_values(nn::loss_per_sample(loss("binary_crossentropy", attrs({{"from_logits", 1}})), t, z),
                {(bce(1, sigmoid(2)) + bce(0, sigmoid(-1))) / 2, (bce(0, sigmoid(0.5)) + bce(1, sigmoid(-3))) / 2},
                1e-9);
}

TEST(TrainerLosses, CategoricalCrossentropyAndSmoothing) {
  Tensor t = make(Shape({2, 3}), {0, 1, 0, 1, 0, 0});
  Tensor p = make(Shape({2, 3}), {0.2, 0.7, 0.1, 0.5, 0.25, 0.25});
  expect_values(nn::loss_per_sample(loss("categorical_crossentropy"), t, p), {-std::log(0.7), -std::log(0.5)}, 1e-9);
  // label_smoothing 0.3 with C = 3: y * 0.7 + 0.1.
  nn::Attrs ls = attrs({{"label_smoothing", 0.3}});
  double l0 = -(0.1 * std::log(0.2) + 0.8 * std::log(0.7) + 0.1 * std::log(0.1));
  double l1 = -(0.8 * std::log(0.5) + 0.1 * std::log(0.25) + 0.1 * std::log(0.25));
  expect_values(nn::loss_per_sample(loss("categorical_crossentropy", ls), t, p), {l0, l1}, 1e-9);
  // from_logits: -log softmax.
  Tensor z = make(Shape({1, 3}), {1, 2, 3});
  double lse = std::log(std::exp(1) + std::exp(2) + std::exp(3));
  expect_values(nn::loss_per_sample(loss("categorical_crossentropy", attrs({{"from_logits", 1}})),
                                    make(Shape({1, 3}), {0, 0, 1}), z),
                {lse - 3}, 1e-9);
}

TEST(TrainerLosses, SparseCategoricalLabelShapes) {
  Tensor p = make(Shape({2, 3}), {0.2, 0.7, 0.1, 0.5, 0.25, 0.25});
  const std::vector<double> want = {-std::log(0.7), -std::log(0.25)};
  expect_values(nn::loss_per_sample(loss("sparse_categorical_crossentropy"), make(Shape({2}), {1, 2}, DType::Int32), p),
                want, 1e-9);
  expect_values(nn::loss_per_sample(loss("sparse_categorical_crossentropy"), make(Shape({2, 1}), {1, 2}), p), want,
                1e-9);
  EXPECT_THROW(nn::loss_per_sample(loss("sparse_categorical_crossentropy"), make(Shape({2}), {1, 3}), p), IndexError);
  EXPECT_THROW(nn::loss_per_sample(loss("sparse_categorical_crossentropy"), make(Shape({2, 3}), {1, 0, 0, 0, 1, 0}), p),
               ShapeError);
  EXPECT_THROW(nn::loss_per_sample(loss("sparse_categorical_crossentropy"), make(Shape({3}), {1, 0, 0}), p), ShapeError);
}

TEST(TrainerLosses, ReduceSumOverBatchSize) {
  Tensor v = make(Shape({4}), {1, 2, 3, 4});
  EXPECT_NEAR(nn::reduce_loss(v, Tensor()).item(), 2.5, 1e-12);
  // sum(values * sample_weight) / number of values (not / sum of weights).
  Tensor sw = make(Shape({4}), {1, 0, 2, 0.5});
  EXPECT_NEAR(nn::reduce_loss(v, sw).item(), (1 + 0 + 6 + 2) / 4.0, 1e-12);
  // [N, 1] weights align with [N] values.
  EXPECT_NEAR(nn::reduce_loss(v, make(Shape({4, 1}), {1, 0, 2, 0.5})).item(), 9 / 4.0, 1e-12);
}

TEST(TrainerLosses, Gradchecks) {
  Tensor t = rand(Shape({3, 4}), 0, 1, 7);
  Tensor sw = make(Shape({3}), {1, 0.5, 2});
  for (const char* k : {"mean_squared_error", "mean_absolute_error", "huber"}) {
    SCOPED_TRACE(k);
    nn::LossSpec s = loss(k, attrs({{"delta", 0.3}}));
    gradcheck([&](const std::vector<Tensor>& in) { return nn::reduce_loss(nn::loss_per_sample(s, t, in[0]), sw); },
              {rand(Shape({3, 4}), -1, 1, 8)});
  }
  Tensor probs = rand(Shape({3, 4}), 0.1, 0.9, 9);
  nn::LossSpec bce = loss("binary_crossentropy", attrs({{"label_smoothing", 0.1}}));
  gradcheck([&](const std::vector<Tensor>& in) { return nn::reduce_loss(nn::loss_per_sample(bce, t, in[0]), sw); },
            {probs});
  nn::LossSpec bcel = loss("binary_crossentropy", attrs({{"from_logits", 1}}));
  gradcheck([&](const std::vector<Tensor>& in) { return nn::reduce_loss(nn::loss_per_sample(bcel, t, in[0]), sw); },
            {rand(Shape({3, 4}), -2, 2, 10)});
  Tensor onehot = make(Shape({3, 4}), {0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1});
  for (double fl : {0.0, 1.0}) {
    nn::LossSpec cce = loss("categorical_crossentropy", attrs({{"from_logits", fl}, {"label_smoothing", 0.1}}));
    gradcheck([&](const std::vector<Tensor>& in) { return nn::reduce_loss(nn::loss_per_sample(cce, onehot, in[0]), sw); },
              {rand(Shape({3, 4}), 0.1, 1, 11)});
    nn::LossSpec scce = loss("sparse_categorical_crossentropy", attrs({{"from_logits", fl}}));
    Tensor labels = make(Shape({3}), {1, 0, 3}, DType::Int32);
    gradcheck([&](const std::vector<Tensor>& in) { return nn::reduce_loss(nn::loss_per_sample(scce, labels, in[0]), sw); },
              {rand(Shape({3, 4}), 0.1, 1, 12)});
  }
}

// ----------------------------------------------------------------------------------------- metrics

TEST(TrainerMetrics, Accuracies) {
  auto m = [](const std::string& k, nn::Attrs a = {}) { return nn::MetricSpec{k, k, 0, std::move(a)}; };
  Tensor t = make(Shape({3, 2}), {1, 0, 0, 1, 1, 1});
  Tensor p = make(Shape({3, 2}), {0.7, 0.5, 0.2, 0.9, 0.4, 0.6});
  expect_values(nn::metric_per_sample(m("binary_accuracy"), t, p), {1, 1, 0.5});
  expect_values(nn::metric_per_sample(m("binary_accuracy", attrs({{"threshold", 0.3}})), t, p), {0.5, 1, 1});
  Tensor oh = make(Shape({3, 3}), {0, 1, 0, 1, 0, 0, 0, 0, 1});
  Tensor pr = make(Shape({3, 3}), {0.1, 0.8, 0.1, 0.2, 0.5, 0.3, 0.3, 0.3, 0.4});
  expect_values(nn::metric_per_sample(m("categorical_accuracy"), oh, pr), {1, 0, 1});
  expect_values(nn::metric_per_sample(m("sparse_categorical_accuracy"), make(Shape({3}), {1, 1, 0}, DType::Int32), pr),
                {1, 1, 0});
  expect_values(nn::metric_per_sample(m("sparse_categorical_accuracy"), make(Shape({3, 1}), {1, 0, 2}), pr), {1, 0, 1});
  expect_values(nn::metric_per_sample(m("mae"), t, p), {0.4, 0.15, 0.5}, 1e-12);
  expect_values(nn::metric_per_sample(m("mean_squared_error"), t, p), {(0.09 + 0.25) / 2, (0.04 + 0.01) / 2, (0.36 + 0.16) / 2},
                1e-12);
  expect_values(nn::metric_per_sample(m("categorical_crossentropy"), oh, pr),
                {-std::log(0.8), -std::log(0.2), -std::log(0.4)}, 1e-9);
  EXPECT_THROW(nn::metric_per_sample(m("auc"), t, p), ValueError);
}

// ----------------------------------------------------------------------------------------- trainer

namespace {

// y = x W + b through one engine Dense layer (2 -> 1), weights shared with the test.
std::shared_ptr<nn::Graph> dense_graph(int units, const std::string& activation, std::vector<double> kernel,
                                       std::vector<double> bias, DType dt = DType::Float64) {
  auto g = std::make_shared<nn::Graph>();
  nn::Attrs a = attrs({{"units", static_cast<double>(units)}});
  a.set("activation", activation);
  g->nodes.push_back({std::shared_ptr<const nn::Layer>(nn::make_layer("Dense", "dense", a)), {0}, {0, 1}, {1}});
  g->weights = {make(Shape({static_cast<int64_t>(kernel.size()) / units, units}), kernel, dt),
                make(Shape({units}), bias, dt)};
  g->trainable = {true, true};
  g->input_ids = {0};
  g->output_ids = {1};
  g->num_values = 2;
  return g;
}

double log_value(const std::vector<nn::LogEntry>& logs, const std::string& name) {
  for (auto& e : logs)
    if (e.name == name) return e.value;
  ADD_FAILURE() << "no log entry " << name;
  return std::nan("");
}

}  // namespace

TEST(TrainerSteps, FirstStepMatchesHandComputedSGD) {
  const std::vector<double> X = {1, 2, -1, 0.5, 0, 1, 2, -1};  // [4, 2]
  const std::vector<double> Y = {1, 0, 2, -1};                 // [4, 1]
  std::vector<double> W = {0.3, -0.2}, b = {0.1};
  auto g = dense_graph(1, "linear", W, b);
  auto opt = std::shared_ptr<optim::Optimizer>(optim::make_optimizer("sgd", attrs({{"learning_rate", 0.1}})));
  nn::Trainer tr(g, {loss("mse")}, {nn::MetricSpec{"mean_absolute_error", "mae", 0, {}}}, opt, {}, {});
  Generator rng(1);
  tr.train_step({make(Shape({4, 2}), X)}, {make(Shape({4, 1}), Y)}, Tensor(), rng);

  // Hand computation: r = xW + b - y; loss = mean(r^2); dW = 2/N X^T r; db = 2/N sum r.
  double loss_v = 0, mae = 0, dW0 = 0, dW1 = 0, db = 0;
  for (int i = 0; i < 4; ++i) {
    double r = X[2 * i] * W[0] + X[2 * i + 1] * W[1] + b[0] - Y[i];
    loss_v += r * r / 4;
    mae += std::fabs(r) / 4;
    dW0 += 2 * X[2 * i] * r / 4;
    dW1 += 2 * X[2 * i + 1] * r / 4;
    db += 2 * r / 4;
  }
  expect_values(g->weights[0], {W[0] - 0.1 * dW0, W[1] - 0.1 * dW1}, 1e-12);
  expect_values(g->weights[1], {b[0] - 0.1 * db}, 1e-12);
  auto logs = tr.logs();
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(logs[0].name, "loss");
  EXPECT_NEAR(logs[0].value, loss_v, 1e-12);  // computed before the update, as Keras reports it
  EXPECT_EQ(logs[1].name, "mae");
  EXPECT_NEAR(logs[1].value, mae, 1e-12);
  EXPECT_EQ(opt->iterations(), 1);
  EXPECT_FALSE(g->weights[0].requires_grad());  // leaves are released after the step
}

TEST(TrainerSteps, LossDecreasesAndEpochLogs) {
  // Softmax classifier on 3 separable points, Adam, several epochs of 2 batches.
  auto g = dense_graph(3, "softmax", rk::testing::seq(6, -0.5, 0.5, 5), {0, 0, 0}, DType::Float32);
  auto opt = std::shared_ptr<optim::Optimizer>(optim::make_optimizer("adam", attrs({{"learning_rate", 0.1}})));
  nn::Trainer tr(g, {loss("sparse_categorical_crossentropy")},
                 {nn::MetricSpec{"sparse_categorical_accuracy", "accuracy", 0, {}}}, opt, {}, {});
  Tensor x = make(Shape({6, 2}), {1, 0, 0, 1, -1, -1, 1.2, 0.1, 0.1, 1.1, -0.9, -1.2}, DType::Float32);
  Tensor y = make(Shape({6}), {0, 1, 2, 0, 1, 2}, DType::Int32);
  Generator rng(3);
  std::vector<double> losses;
  int64_t calls = 0;
  for (int epoch = 0; epoch < 15; ++epoch) {
    tr.reset_metrics();
    int64_t done = tr.run_epoch({x}, {y}, Tensor(), {{0, 1, 2}, {3, 4, 5}}, rng,
                                [&](int64_t step, const std::vector<nn::LogEntry>& logs) {
                                  ++calls;
                                  EXPECT_EQ(logs.size(), 2u);
                                  return step >= 1;
                                });
    EXPECT_EQ(done, 2);
    losses.push_back(log_value(tr.logs(), "loss"));
  }
  EXPECT_EQ(calls, 30);
  EXPECT_LT(losses.back(), 0.5 * losses.front());
  EXPECT_NEAR(log_value(tr.logs(), "accuracy"), 1.0, 1e-12);
  // evaluate-style pass: test_step accumulates without changing weights.
  std::vector<double> before = values(g->weights[0]);
  tr.reset_metrics();
  tr.test_step({x}, {y}, Tensor());
  expect_values(g->weights[0], before, 0);
  EXPECT_LT(log_value(tr.logs(), "loss"), losses.front());
  // on_batch returning false stops the epoch.
  int64_t done = tr.run_epoch({x}, {y}, Tensor(), {{0, 1}, {2, 3}, {4, 5}}, rng,
                              [](int64_t, const std::vector<nn::LogEntry>&) { return false; });
  EXPECT_EQ(done, 1);
}

TEST(TrainerSteps, SampleWeightsRegularizersAndConstraints) {
  const std::vector<double> X = {1, 2, -1, 0.5};  // [2, 2]
  const std::vector<double> Y = {1, 0};
  std::vector<double> W = {0.3, -0.2}, b = {0.1};
  auto g = dense_graph(1, "linear", W, b);
  auto opt = std::shared_ptr<optim::Optimizer>(optim::make_optimizer("sgd", attrs({{"learning_rate", 0.1}})));
  nn::Attrs weighted;
  weighted.set("weighted", std::vector<double>{1});
  nn::Trainer tr(g, {loss("mse")},
                 {nn::MetricSpec{"mse", "mse", 0, {}}, nn::MetricSpec{"mse", "weighted_mse", 0, weighted}}, opt,
                 {nn::Regularizer{0, 0.01, 0.1}}, {{1, optim::Constraint{"non_neg", {}}}});
  Generator rng(1);
  tr.train_step({make(Shape({2, 2}), X)}, {make(Shape({2, 1}), Y)}, make(Shape({2}), {2, 0.5}), rng);
  double r0 = 1 * 0.3 + 2 * -0.2 + 0.1 - 1, r1 = -1 * 0.3 + 0.5 * -0.2 + 0.1 - 0;
  double data = (2 * r0 * r0 + 0.5 * r1 * r1) / 2;
  double pen = 0.01 * (0.3 + 0.2) + 0.1 * (0.09 + 0.04);
  auto logs = tr.logs();
  EXPECT_NEAR(log_value(logs, "loss"), data + pen, 1e-12);
  EXPECT_NEAR(log_value(logs, "mse"), (r0 * r0 + r1 * r1) / 2, 1e-12);                    // metrics ignore weights
  EXPECT_NEAR(log_value(logs, "weighted_mse"), (2 * r0 * r0 + 0.5 * r1 * r1) / 2.5, 1e-12);  // weighted_metrics
  // Gradient of the weighted data term + l1 sign(w) + 2 l2 w.
  double dW0 = (2 * 2 * r0 * 1 + 0.5 * 2 * r1 * -1) / 2 + 0.01 * 1 + 0.2 * 0.3;
  double dW1 = (2 * 2 * r0 * 2 + 0.5 * 2 * r1 * 0.5) / 2 + 0.01 * -1 + 0.2 * -0.2;
  double db = (2 * 2 * r0 + 0.5 * 2 * r1) / 2;
  expect_values(g->weights[0], {0.3 - 0.1 * dW0, -0.2 - 0.1 * dW1}, 1e-12);
  expect_values(g->weights[1], {std::max(0.0, 0.1 - 0.1 * db)}, 1e-12);  // non_neg on the bias
}

TEST(TrainerSteps, FailingStepLeavesWeightsUntouched) {
  auto g = dense_graph(3, "softmax", rk::testing::seq(6, -0.5, 0.5, 5), {0, 0, 0});
  auto opt = std::shared_ptr<optim::Optimizer>(optim::make_optimizer("adam", nn::Attrs()));
  nn::Trainer tr(g, {loss("sparse_categorical_crossentropy")}, {}, opt, {}, {});
  std::vector<double> w0 = values(g->weights[0]);
  Tensor x = make(Shape({2, 2}), {1, 0, 0, 1});
  Generator rng(1);
  EXPECT_THROW(tr.train_step({x}, {make(Shape({2}), {0, 5}, DType::Int32)}, Tensor(), rng), IndexError);
  EXPECT_THROW(tr.train_step({make(Shape({2, 3}), {1, 0, 0, 1, 0, 0})}, {make(Shape({2}), {0, 1}, DType::Int32)},
                             Tensor(), rng),
               ShapeError);
  expect_values(g->weights[0], w0, 0);
  EXPECT_EQ(opt->iterations(), 0);
  EXPECT_FALSE(g->weights[0].requires_grad());
  EXPECT_NEAR(log_value(tr.logs(), "loss"), 0.0, 0);  // nothing accumulated
  // Construction errors.
  EXPECT_THROW((void)nn::Trainer(g, {}, {}, opt, {}, {}), ValueError);
  EXPECT_THROW((void)nn::Trainer(g, {loss("mse")}, {nn::MetricSpec{"mae", "mae", 1, {}}}, opt, {}, {}), ValueError);
  EXPECT_THROW((void)nn::Trainer(g, {loss("mse")}, {}, opt, {nn::Regularizer{5, 1, 0}}, {}), ValueError);
  EXPECT_THROW((void)nn::Trainer(g, {loss("mse")}, {}, opt, {}, {{0, optim::Constraint{"bogus", {}}}}), ValueError);
}

TEST(TrainerSteps, MultiOutputLossNames) {
  // Two Dense heads on one input; loss weights 1 and 0.5; per-output losses are unweighted.
  auto g = std::make_shared<nn::Graph>();
  nn::Attrs a = attrs({{"units", 1}});
  g->nodes.push_back({std::shared_ptr<const nn::Layer>(nn::make_layer("Dense", "head_a", a)), {0}, {0, 1}, {1}});
  g->nodes.push_back({std::shared_ptr<const nn::Layer>(nn::make_layer("Dense", "head_b", a)), {0}, {2, 3}, {2}});
  g->weights = {make(Shape({2, 1}), {0.5, -0.5}), make(Shape({1}), {0}), make(Shape({2, 1}), {1, 1}),
                make(Shape({1}), {0})};
  g->trainable = {true, true, true, false};
  g->input_ids = {0};
  g->output_ids = {1, 2};
  g->num_values = 3;
  auto opt = std::shared_ptr<optim::Optimizer>(optim::make_optimizer("sgd", nn::Attrs()));
  nn::LossSpec la = loss("mse"), lb = loss("mae");
  lb.weight = 0.5;
  lb.attrs.set("output_name", std::string("out_b"));
  // A regulariser and a constraint on the frozen bias are ignored, as in Keras 3.
  nn::Trainer tr(g, {la, lb}, {}, opt, {nn::Regularizer{3, 1.0, 1.0}},
                 {{3, optim::Constraint{"max_norm", attrs({{"max_value", 0.5}})}}});
  g->weights[3].data<double>()[0] = 2;
  Tensor x = make(Shape({2, 2}), {1, 2, 3, 4});
  Generator rng(1);
  tr.test_step({x}, {make(Shape({2, 1}), {0, 0}), make(Shape({2, 1}), {0, 0})}, Tensor());
  auto logs = tr.logs();
  ASSERT_EQ(logs.size(), 3u);
  // head_a: x W = (-0.5, -0.5) -> mse 0.25; head_b: (3, 7) + 2 -> mae 7.
  EXPECT_EQ(logs[1].name, "head_a_loss");
  EXPECT_NEAR(logs[1].value, 0.25, 1e-12);
  EXPECT_EQ(logs[2].name, "out_b_loss");
  EXPECT_NEAR(logs[2].value, 7, 1e-12);
  EXPECT_NEAR(logs[0].value, 0.25 + 0.5 * 7, 1e-12);
  // The non-trainable bias of head_b does not move.
  tr.train_step({x}, {make(Shape({2, 1}), {0, 0}), make(Shape({2, 1}), {0, 0})}, Tensor(), rng);
  expect_values(g->weights[3], {2});
  EXPECT_NE(values(g->weights[2])[0], 1.0);
}
