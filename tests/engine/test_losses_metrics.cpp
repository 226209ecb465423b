// Issue 5's losses and metrics in the engine: float64 gradient checks of every new loss, the
// reductions, and stateful metrics (state over batches equals the metric over all samples;
// prepare() changes nothing until its update is applied).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "nn/metrics.h"
#include "nn/trainer.h"
#include "test_util.h"

using namespace rk;
using rk::testing::attrs, rk::testing::gradcheck, rk::testing::make, rk::testing::rand;

namespace {

nn::LossSpec loss(const std::string& kind, nn::Attrs a = {}) { return nn::LossSpec{kind, std::move(a), 1.0, {}}; }

nn::MetricSpec metric(const std::string& kind, nn::Attrs a = {}) {
  nn::MetricSpec m;
  m.kind = kind;
  m.name = kind;
  m.attrs = std::move(a);
  return m;
}

}  // namespace

TEST(Issue5Losses, Gradchecks) {
  Tensor t = rand(Shape({3, 4}), 0.05, 1, 21);
  Tensor sw = make(Shape({3}), {1, 0.5, 2});
  Tensor pos = rand(Shape({3, 4}), 0.1, 0.9, 22);
  for (const char* k : {"mean_absolute_percentage_error", "mean_squared_logarithmic_error", "log_cosh", "hinge",
                        "squared_hinge", "categorical_hinge", "kl_divergence", "poisson", "cosine_similarity",
                        "binary_focal_crossentropy", "categorical_focal_crossentropy", "dice", "tversky"}) {
    SCOPED_TRACE(k);
    nn::LossSpec s = loss(k, attrs({{"alpha", 0.3}, {"gamma", 1.5}, {"apply_class_balancing", 1}}));
    gradcheck([&](const std::vector<Tensor>& in) { return nn::reduce_loss(nn::loss_per_sample(s, t, in[0]), sw); },
              {pos});
  }
  nn::LossSpec bfl = loss("binary_focal_crossentropy", attrs({{"from_logits", 1}, {"label_smoothing", 0.1}}));
  gradcheck([&](const std::vector<Tensor>& in) { return nn::reduce_loss(nn::loss_per_sample(bfl, t, in[0]), sw); },
            {rand(Shape({3, 4}), -2, 2, 23)});
  nn::LossSpec gce = loss("categorical_generalized_cross_entropy", attrs({{"q", 0.7}}));
  Tensor labels = make(Shape({3}), {1, 0, 3});
  gradcheck([&](const std::vector<Tensor>& in) { return nn::reduce_loss(nn::loss_per_sample(gce, labels, in[0]), sw); },
            {pos});
}

TEST(Issue5Losses, Reductions) {
  Tensor v = make(Shape({4}), {1, 2, 3, 4});
  Tensor sw = make(Shape({4}), {1, 0, 2, 0.5});
  EXPECT_NEAR(nn::reduce_loss(v, sw, "sum").item(), 1 + 6 + 2, 1e-12);
  EXPECT_NEAR(nn::reduce_loss(v, sw, "mean").item(), 9 / 4.0, 1e-12);
  EXPECT_NEAR(nn::reduce_loss(v, sw, "mean_with_sample_weight").item(), 9 / 3.5, 1e-12);
  EXPECT_EQ(nn::reduce_loss(v, sw, "none").numel(), 4);
  EXPECT_THROW(nn::reduce_loss(v, sw, "avg"), ValueError);
  EXPECT_THROW(nn::loss_per_sample(loss("ctc"), v, v), ShapeError);  // ctc needs (batch, len) labels
  // A Keras mask (circle: values > 0) joins the weights; the means run over the valid entries.
  Tensor m = make(Shape({4}), {1, 0, 2, 0});
  EXPECT_NEAR(nn::reduce_loss(m, Tensor(), "sum_over_batch_size", nn::loss_output_mask("circle", m)).item(), 1.5, 1e-12);
  EXPECT_NEAR(nn::reduce_loss(m, sw, "mean_with_sample_weight", nn::loss_output_mask("circle", m)).item(), 5 / 3.0, 1e-12);
  EXPECT_NEAR(nn::reduce_loss(m, Tensor(), "sum_over_batch_size", nn::loss_output_mask("mse", m)).item(), 0.75, 1e-12);
}

TEST(Issue5Metrics, BatchesEqualWholeData) {
  Tensor t = make(Shape({6}), {0, 1, 1, 0, 1, 0});
  Tensor p = make(Shape({6}), {0.2, 0.7, 0.4, 0.6, 0.9, 0.1});
  nn::Attrs a;
  std::vector<double> thr = {-1e-7, 0.25, 0.5, 0.75, 1 + 1e-7};
  a.set("thresholds", thr);
  auto whole = nn::make_metric(metric("auc", a));
  whole->update(t, p, Tensor());
  auto parts = nn::make_metric(metric("auc", a));
  parts->update(make(Shape({3}), {0, 1, 1}), make(Shape({3}), {0.2, 0.7, 0.4}), Tensor());
  auto pending = parts->prepare(make(Shape({3}), {0, 1, 0}), make(Shape({3}), {0.6, 0.9, 0.1}), Tensor());
  const double before = parts->result()[0];
  EXPECT_NE(before, whole->result()[0]);  // not applied yet
  pending();
  EXPECT_NEAR(parts->result()[0], whole->result()[0], 1e-12);
  parts->reset();
  EXPECT_EQ(parts->result()[0], 0);
  // bad input fails in prepare, before any state changes
  EXPECT_THROW(parts->prepare(make(Shape({2}), {0, 1}), make(Shape({3}), {0.1, 0.2, 0.3}), Tensor()), ShapeError);
  EXPECT_THROW(nn::make_metric(metric("no_such_metric")), ValueError);
}
