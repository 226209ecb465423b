// Engine conv and pooling layers (src/nn/layers_conv.cpp, layers_pooling.cpp): shape inference,
// Keras weight specs, Keras-style errors, a hand-computed value, and float64 finite-difference
// gradchecks through every layer kind (inputs and weights; channels_first, groups, causal, same).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "nn/attrs.h"
#include "nn/layer.h"
#include "test_util.h"

namespace {

using namespace rk;
using nn::Attrs;
using nn::PartialShape;
using rk::testing::gradcheck, rk::testing::make, rk::testing::rand, rk::testing::values;

Attrs A(std::initializer_list<std::pair<const char*, std::vector<double>>> nums = {},
        std::initializer_list<std::pair<const char*, const char*>> strs = {}) {
  Attrs a;
  for (const auto& [k, v] : nums) a.set(k, v);
  for (const auto& [k, v] : strs) a.set(k, std::string(v));
  return a;
}

std::unique_ptr<nn::Layer> L(const std::string& kind, const Attrs& a) { return nn::make_layer(kind, "lyr", a); }

Tensor run1(const nn::Layer& l, std::vector<Tensor> in, std::vector<Tensor> w = {}) {
  Generator g(7);
  nn::Context ctx;
  ctx.rng = &g;
  return l.forward(in, w, ctx)[0];
}

template <typename E>
void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one containing: " << needle;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

std::vector<std::vector<int64_t>> spec_shapes(const nn::Layer& l, const PartialShape& in) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& s : l.weight_specs({in})) out.push_back(s.shape);
  return out;
}

// gradcheck of layer `l` on input shape `in` with weights of its specs (float64, seeded).
void check_layer(const nn::Layer& l, const std::vector<int64_t>& in) {
  std::vector<Tensor> args{rand(Shape(in), -1, 1, 11)};
  uint64_t seed = 12;
  for (const auto& s : l.weight_specs({in})) args.push_back(rand(Shape(s.shape), -1, 1, seed++));
  gradcheck(
      [&](const std::vector<Tensor>& v) {
        return run1(l, {v[0]}, std::vector<Tensor>(v.begin() + 1, v.end()));
      },
      args);
}

TEST(LayersConv, ShapesAndKerasWeightSpecs) {
  auto c = L("Conv2D", A({{"filters", {8}}, {"kernel_size", {3, 5}}, {"strides", {2}}}, {{"padding", "same"}}));
  EXPECT_EQ(c->output_shapes({{-1, 9, 10, 3}})[0], (PartialShape{-1, 5, 5, 8}));
  EXPECT_EQ(spec_shapes(*c, {-1, 9, 10, 3}), (std::vector<std::vector<int64_t>>{{3, 5, 3, 8}, {8}}));
  EXPECT_EQ(c->output_shapes({{-1, -1, 10, 3}})[0], (PartialShape{-1, -1, 5, 8}));
  auto t = L("Conv2DTranspose", A({{"filters", {2}}, {"kernel_size", {3}}, {"strides", {2}}}));
  EXPECT_EQ(t->output_shapes({{-1, 4, 5, 3}})[0], (PartialShape{-1, 9, 11, 2}));
  EXPECT_EQ(spec_shapes(*t, {-1, 4, 5, 3}), (std::vector<std::vector<int64_t>>{{3, 3, 2, 3}, {2}}));
  auto s = L("SeparableConv1D", A({{"filters", {4}}, {"kernel_size", {3}}, {"depth_multiplier", {2}}}));
  EXPECT_EQ(spec_shapes(*s, {-1, 9, 3}), (std::vector<std::vector<int64_t>>{{3, 3, 2}, {1, 6, 4}, {4}}));
  auto p = L("MaxPooling2D", A({{"pool_size", {2}}}, {{"padding", "same"}, {"data_format", "channels_first"}}));
  EXPECT_EQ(p->output_shapes({{-1, 3, 7, 7}})[0], (PartialShape{-1, 3, 4, 4}));
  auto g = L("GlobalAveragePooling3D", A({{"keepdims", {1}}}));
  EXPECT_EQ(g->output_shapes({{-1, 2, 3, 4, 5}})[0], (PartialShape{-1, 1, 1, 1, 5}));
}

TEST(LayersConv, KerasStyleErrors) {
  auto c = L("Conv2D", A({{"filters", {4}}, {"kernel_size", {3}}}));
  expect_error<ShapeError>([&] { c->output_shapes({{-1, 28, 28}}); },
                           "expected ndim=4, found ndim=3. Full shape received: (None, 28, 28)");
  expect_error<ShapeError>([&] { c->output_shapes({{-1, 2, 2, 3}}); },
                           "kernel_size (3, 3) does not fit in the spatial extents (2, 2)");
  expect_error<ShapeError>([&] { run1(*c, {rand({1, 5, 5, 2}, -1, 1, 1)}, {rand({3, 3, 3, 4}, -1, 1, 2),
                                                                       rand({4}, -1, 1, 3)}); },
                           "expected axis -1 of input shape to have value 3");
  expect_error<ValueError>([&] { L("Conv2D", A({{"filters", {5}}, {"kernel_size", {3}}, {"groups", {2}}})); },
                           "evenly divisible by the number of groups");
  expect_error<ValueError>([&] { L("Conv2D", A({{"filters", {2}}, {"kernel_size", {3}}}, {{"padding", "causal"}})); },
                           "`padding` must be one of");
  expect_error<ValueError>([&] { L("Conv1D", A({{"filters", {2}}, {"kernel_size", {3}}, {"strides", {2}},
                                                {"dilation_rate", {2}}})); },
                           "not supported in conjunction with `dilation_rate > 1`");
  auto p = L("AveragePooling1D", A({{"pool_size", {3}}}));
  expect_error<ShapeError>([&] { p->output_shapes({{-1, 2, 4}}); }, "pool_size (3,) does not fit");
}

TEST(LayersConv, Conv1DValueHandComputed) {
  // x = [1, 2, 3, 4] (one channel), kernel [1, 10, 100] causal: y[t] = x[t-2] + 10 x[t-1] + 100 x[t]
  auto c = L("Conv1D", A({{"filters", {1}}, {"kernel_size", {3}}, {"use_bias", {0}}}, {{"padding", "causal"}}));
  Tensor y = run1(*c, {make(Shape({1, 4, 1}), {1, 2, 3, 4})}, {make(Shape({3, 1, 1}), {1, 10, 100})});
  EXPECT_EQ(values(y), (std::vector<double>{100, 210, 321, 432}));
}

TEST(LayersConv, GradcheckEveryConvKind) {
  check_layer(*L("Conv2D", A({{"filters", {3}}, {"kernel_size", {3}}, {"strides", {2}}}, {{"padding", "same"},
                                                                                    {"activation", "tanh"}})),
              {2, 5, 4, 2});
  check_layer(*L("Conv2D", A({{"filters", {4}}, {"kernel_size", {2}}, {"groups", {2}}},
                             {{"data_format", "channels_first"}})),
              {2, 4, 3, 3});
  check_layer(*L("Conv1D", A({{"filters", {2}}, {"kernel_size", {3}}, {"dilation_rate", {2}}}, {{"padding", "causal"}})),
              {2, 6, 2});
  check_layer(*L("Conv3D", A({{"filters", {2}}, {"kernel_size", {2}}})), {1, 3, 3, 3, 2});
  check_layer(*L("Conv2DTranspose", A({{"filters", {2}}, {"kernel_size", {3}}, {"strides", {2}}}, {{"padding", "same"}})),
              {2, 3, 2, 3});
  check_layer(*L("Conv1DTranspose", A({{"filters", {2}}, {"kernel_size", {3}}, {"strides", {2}}, {"output_padding", {1}}})),
              {2, 3, 2});
  check_layer(*L("DepthwiseConv2D", A({{"kernel_size", {2}}, {"depth_multiplier", {2}}})), {2, 4, 3, 3});
  check_layer(*L("SeparableConv2D", A({{"filters", {3}}, {"kernel_size", {2}}}, {{"padding", "same"}})), {2, 3, 3, 2});
}

TEST(LayersConv, GradcheckPooling) {
  check_layer(*L("MaxPooling2D", A({{"pool_size", {2}}}, {{"padding", "same"}})), {2, 3, 5, 2});
  check_layer(*L("AveragePooling1D", A({{"pool_size", {3}}, {"strides", {2}}}, {{"padding", "same"}})), {2, 7, 2});
  check_layer(*L("AveragePooling2D", A({{"pool_size", {2}}}, {{"data_format", "channels_first"}})), {1, 2, 4, 4});
  check_layer(*L("GlobalAveragePooling2D", A()), {2, 3, 3, 2});
  check_layer(*L("GlobalMaxPooling1D", A({{"keepdims", {1}}})), {2, 5, 3});
}

}  // namespace
