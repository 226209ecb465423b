// Engine tests of the normalization and spatial reshaping layers: batch normalization's training
// statistics and state updates (layer indices, then graph indices after Graph::forward, written by
// apply_state_updates), and float64 finite-difference gradchecks through inputs and weights.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "nn/attrs.h"
#include "nn/graph.h"
#include "nn/layer.h"
#include "test_util.h"

namespace {

using namespace rk;
using nn::Attrs;
using rk::testing::expect_values, rk::testing::gradcheck, rk::testing::make, rk::testing::rand, rk::testing::values;

Attrs attrs(std::initializer_list<std::pair<const char*, std::vector<double>>> nums,
            std::initializer_list<std::pair<const char*, const char*>> strs = {}) {
  Attrs a;
  for (const auto& [k, v] : nums) a.set(k, v);
  for (const auto& [k, v] : strs) a.set(k, std::string(v));
  return a;
}

Tensor call(const nn::Layer& l, const Tensor& x, const std::vector<Tensor>& w, bool training, nn::Context* out = nullptr) {
  Generator g(3);
  nn::Context ctx;
  ctx.training = training;
  ctx.rng = &g;
  Tensor y = l.forward({x}, w, ctx)[0];
  if (out) *out = ctx;
  return y;
}

TEST(LayersNorm, BatchNormTrainingStatisticsAndStateUpdates) {
  auto bn = nn::make_layer("BatchNormalization", "bn", attrs({{"momentum", {0.9}}, {"epsilon", {0.0}}}));
  // two samples, two features: means (2, 10), biased variances (1, 4)
  Tensor x = make({2, 2}, {1, 8, 3, 12});
  Tensor gamma = make({2}, {1, 2}), beta = make({2}, {0, 1}), mm = make({2}, {0, 0}), mv = make({2}, {1, 1});
  nn::Context ctx;
  Tensor y = call(*bn, x, {gamma, beta, mm, mv}, true, &ctx);
  expect_values(y, {-1, -1, 1, 3}, 1e-12);
  ASSERT_EQ(ctx.state_updates.size(), 2u);
  EXPECT_EQ(ctx.state_updates[0].first, 2);  // moving_mean is the layer's weight 2
  EXPECT_EQ(ctx.state_updates[1].first, 3);
  expect_values(ctx.state_updates[0].second, {0.2, 1.0}, 1e-12);
  expect_values(ctx.state_updates[1].second, {0.9 + 0.1, 0.9 + 0.4}, 1e-12);
  // inference: the moving statistics, no updates
  nn::Context ictx;
  expect_values(call(*bn, x, {gamma, beta, mm, mv}, false, &ictx), {1, 17, 3, 25}, 1e-12);
  EXPECT_TRUE(ictx.state_updates.empty());
}

TEST(LayersNorm, GraphMapsStateUpdatesToGraphWeightsAndAppliesThem) {
  auto g = std::make_shared<nn::Graph>();
  std::shared_ptr<const nn::Layer> dense(nn::make_layer("Dense", "d", attrs({{"units", {2}}})));
  std::shared_ptr<const nn::Layer> bn(
      nn::make_layer("BatchNormalization", "bn", attrs({{"momentum", {0.5}}, {"center", {0}}, {"scale", {0}}})));
  g->weights = {make({2, 2}, {1, 0, 0, 1}), make({2}, {0, 0}), make({2}, {4, 4}), make({2}, {2, 2})};
  g->trainable = {true, true, false, false};
  g->nodes.push_back({dense, {0}, {0, 1}, {1}});
  g->nodes.push_back({bn, {1}, {2, 3}, {2}});
  g->input_ids = {0};
  g->output_ids = {2};
  g->num_values = 3;
  g->validate();
  nn::Context ctx;
  ctx.training = true;
  Generator gen(1);
  ctx.rng = &gen;
  g->forward({make({2, 2}, {0, 2, 2, 6})}, ctx);
  ASSERT_EQ(ctx.state_updates.size(), 2u);
  EXPECT_EQ(ctx.state_updates[0].first, 2);  // graph numbering
  EXPECT_EQ(ctx.state_updates[1].first, 3);
  nn::apply_state_updates(ctx, g->weights);
  expect_values(g->weights[2], {0.5 * 4 + 0.5 * 1, 0.5 * 4 + 0.5 * 4}, 1e-12);
  expect_values(g->weights[3], {0.5 * 2 + 0.5 * 1, 0.5 * 2 + 0.5 * 4}, 1e-12);
}

TEST(LayersNorm, SharedBatchNormChainsItsUpdatesWithinOnePass) {
  // the same layer applied twice: the second update starts from the first one's result
  auto g = std::make_shared<nn::Graph>();
  std::shared_ptr<const nn::Layer> bn(
      nn::make_layer("BatchNormalization", "bn", attrs({{"momentum", {0.5}}, {"center", {0}}, {"scale", {0}}})));
  g->weights = {make({1}, {8}), make({1}, {1})};
  g->trainable = {false, false};
  g->nodes.push_back({bn, {0}, {0, 1}, {1}});
  g->nodes.push_back({bn, {1}, {0, 1}, {2}});
  g->input_ids = {0};
  g->output_ids = {2};
  g->num_values = 3;
  nn::Context ctx;
  ctx.training = true;
  Generator gen(1);
  ctx.rng = &gen;
  g->forward({make({2, 1}, {2, 4})}, ctx);  // batch 1: mean 3; batch 2 (normalized): mean 0
  nn::apply_state_updates(ctx, g->weights);
  expect_values(g->weights[0], {(8 * 0.5 + 3 * 0.5) * 0.5 + 0 * 0.5}, 1e-6);
}

TEST(LayersNorm, FrozenBatchNormUsesMovingStatisticsInTraining) {
  auto bn = nn::make_layer("BatchNormalization", "bn", attrs({{"trainable", {0}}, {"epsilon", {0.0}}}));
  nn::Context ctx;
  Tensor y = call(*bn, make({2, 1}, {1, 3}), {make({1}, {2}), make({1}, {0}), make({1}, {1}), make({1}, {4})}, true,
                  &ctx);
  expect_values(y, {0, 2}, 1e-12);
  EXPECT_TRUE(ctx.state_updates.empty());
}

TEST(LayersNorm, BatchNormGradcheck) {
  auto bn = nn::make_layer("BatchNormalization", "bn", attrs({{"axis", {1}}}));
  Tensor mm = rand({3}, -1, 1, 4), mv = rand({3}, 0.5, 2, 5);
  for (bool training : {true, false})
    gradcheck([&](const std::vector<Tensor>& v) { return call(*bn, v[0], {v[1], v[2], mm, mv}, training); },
              {rand({4, 3, 2}, -1, 1, 1), rand({3}, 0.5, 2, 2), rand({3}, -1, 1, 3)});
}

TEST(LayersNorm, LayerAndGroupNormGradcheck) {
  auto ln = nn::make_layer("LayerNormalization", "ln", attrs({{"axis", {1, 2}}}));
  gradcheck([&](const std::vector<Tensor>& v) { return call(*ln, v[0], {v[1], v[2]}, false); },
            {rand({2, 3, 4}, -1, 1, 6), rand({3, 4}, -1, 1, 7), rand({3, 4}, -1, 1, 8)});
  auto rms = nn::make_layer("LayerNormalization", "rms", attrs({{"rms_scaling", {1}}}));
  gradcheck([&](const std::vector<Tensor>& v) { return call(*rms, v[0], {v[1]}, false); },
            {rand({3, 4}, -1, 1, 9), rand({4}, -1, 1, 10)});
  auto gn = nn::make_layer("GroupNormalization", "gn", attrs({{"groups", {2}}}));
  gradcheck([&](const std::vector<Tensor>& v) { return call(*gn, v[0], {v[1], v[2]}, false); },
            {rand({2, 3, 4}, -1, 1, 11), rand({4}, -1, 1, 12), rand({4}, -1, 1, 13)});
}

TEST(LayersReshaping, PaddingCroppingUpsamplingGradcheck) {
  auto zp = nn::make_layer("ZeroPadding2D", "zp", attrs({{"padding", {1, 0, 2, 1}}}));
  auto cr = nn::make_layer("Cropping2D", "cr", attrs({{"cropping", {1, 0, 0, 1}}}));
  auto up = nn::make_layer("UpSampling2D", "up", attrs({{"size", {2, 3}}}));
  auto bl = nn::make_layer("UpSampling2D", "bl", attrs({{"size", {2, 3}}}, {{"interpolation", "bilinear"}}));
  for (const auto* l : {zp.get(), cr.get(), up.get(), bl.get()})
    gradcheck([&](const std::vector<Tensor>& v) { return call(*l, v[0], {}, false); }, {rand({2, 3, 3, 2}, -1, 1, 14)});
  Tensor y = call(*zp, make({1, 1, 1, 1}, {5}), {}, false);
  EXPECT_EQ(y.shape().dims(), (std::vector<int64_t>{1, 2, 4, 1}));
  expect_values(y, {0, 0, 0, 0, 0, 0, 5, 0});
}

}  // namespace
