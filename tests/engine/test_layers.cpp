// Engine layers: values against hand-computed numbers and transcribed conformance fixtures
// (TensorFlow.js Layers 4.22 reference outputs), shape inference and its Keras-style errors,
// float64 finite-difference gradchecks through every differentiable layer (inputs and weights).
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "nn/attrs.h"
#include "nn/layer.h"
#include "test_util.h"

namespace {

using namespace rk;
using nn::Attrs;
using nn::PartialShape;
using rk::testing::expect_values, rk::testing::gradcheck, rk::testing::make, rk::testing::rand, rk::testing::values;

// Transcribed from /work/shared/conformance/fixtures/<case>/case.json (row-major data).
// ---- 02_layer_prelu: Dense(5, linear) -> prelu layer, input 6
// input dense_input shape [4, 6]
const std::vector<int64_t> k02_layer_prelu_input0_shape{4, 6};
const std::vector<double> k02_layer_prelu_input0{2.4215245, 1.628642, 1.9405739, 3.7709942, -0.85711443, 1.7398709, -3.3281727, -1.192206, -1.2649045, 1.3935413, 1.6578504, -1.8512152, 2.271033, 0.73931307, 3.1130586, 3.250187, 0.7502572, -2.536399, -1.3598089, 0.033501606, 1.5385447, -2.9328115, -2.4748635, -1.6287386};
// weight dense/kernel shape [6, 5]
const std::vector<int64_t> k02_layer_prelu_weight0_shape{6, 5};
const std::vector<double> k02_layer_prelu_weight0{0.35650605, 0.02529164, 0.34347928, -0.05826449, 0.31271163, 0.4675916, 0.07870776, 0.36916813, -0.26765656, -0.020277921, 0.020511081, 0.31965134, -0.3783252, 0.26436305, 0.111627236, -0.25786796, 0.4158577, 0.12616792, -0.15208311, 0.25278896, 0.29971227, -0.45193455, 0.35744774, 0.3930297, 0.21072102, -0.32938224, 0.35899252, -0.21892883, -0.12720352, -0.20058227};
// weight dense/bias shape [5]
const std::vector<int64_t> k02_layer_prelu_weight1_shape{5};
const std::vector<double> k02_layer_prelu_weight1{-0.4263314, 0.2531617, 0.29373953, 0.25459582, -0.47556278};
// weight p_re_lu/alpha shape [5]
const std::vector<int64_t> k02_layer_prelu_weight2_shape{5};
const std::vector<double> k02_layer_prelu_weight2{0.23968042, 0.2778055, 0.10812955, 0.20267056, 0.11379451};
// output p_re_lu shape [4, 5]
const std::vector<int64_t> k02_layer_prelu_output0_shape{4, 5};
const std::vector<double> k02_layer_prelu_output0{-0.13520122, 3.643057, 0.78105474, -0.19073072, 0.88893795, -0.3472896, -0.32321975, 0.36270142, 1.1083493, -0.0637712, 1.0150414, 1.4658828, 1.4025126, 0.8705846, 2.055589, -0.07499133, 0.027343675, -0.17745274, 0.41210938, -0.18957241};
// ---- 10_merge_dot_3d_axes2: Dot(axes=[2,2]) of 2x3x4 and 2x5x4 -> 2x3x5 (batched matmul, extra)
// input input_a shape [2, 3, 4]
const std::vector<int64_t> k10_merge_dot_3d_axes2_input0_shape{2, 3, 4};
const std::vector<double> k10_merge_dot_3d_axes2_input0{-0.7782201, -0.78415215, 0.4533774, -0.6521303, 0.34045693, -0.46604457, -0.82845443, 0.9850328, -0.5536601, 0.35848108, 0.3168956, -0.40640548, 0.3903189, 0.53482723, 0.33019343, 0.13377492, -0.13276215, -0.030368468, 0.2606963, -0.066336885, -0.27178797, -0.743526, 0.79585665, -0.37308633};
// input input_b shape [2, 5, 4]
const std::vector<int64_t> k10_merge_dot_3d_axes2_input1_shape{2, 5, 4};
const std::vector<double> k10_merge_dot_3d_axes2_input1{-0.3949559, 0.5107876, -0.39433962, -0.9739697, 0.12571232, -0.587618, -0.63690966, 0.17443009, 0.84039015, -0.18578139, 0.15032797, 0.37294525, -0.1390056, 0.062998235, 0.6686653, -0.26508772, -0.92483073, -0.38676724, 0.4109047, 0.53623813, -0.7540484, 0.6260484, -0.95465004, -0.65598905, 0.37728858, -0.96105057, 0.6381292, -0.3254096, -0.17891961, -0.4848835, 0.64642686, -0.12202407, -0.58468866, 0.31032413, -0.9905807, 0.21487556, -0.65410763, 0.34696317, 0.7204576, 0.21568011};
// output merge shape [2, 3, 5]
const std::vector<int64_t> k10_merge_dot_3d_axes2_output0_shape{2, 3, 5};
const std::vector<double> k10_merge_dot_3d_axes2_output0{0.36319792, -0.039561536, -0.68338126, 0.5348062, 0.859604, -1.0052149, 1.0161258, 0.6155225, -0.8917642, 0.05318206, 0.67264116, -0.55297506, -0.6358183, 0.4191757, 0.28567693, -0.36246568, -0.19955873, -0.13204245, -0.3605835, 0.19699775, -0.1242605, 0.16704056, 0.2150947, -0.20429443, 0.24981707, -0.775566, 1.2412888, 0.9691403, -0.94035006, 0.41271615};


Tensor from(const std::vector<int64_t>& shape, const std::vector<double>& v, DType dt = DType::Float32) {
  return make(Shape(shape), v, dt);
}

// Attrs from a list of numeric settings and string settings.
Attrs A(std::initializer_list<std::pair<const char*, std::vector<double>>> nums = {},
        std::initializer_list<std::pair<const char*, const char*>> strs = {}) {
  Attrs a;
  for (const auto& [k, v] : nums) a.set(k, v);
  for (const auto& [k, v] : strs) a.set(k, std::string(v));
  return a;
}

std::unique_ptr<nn::Layer> L(const std::string& kind, const Attrs& a = Attrs(), const std::string& name = "lyr") {
  return nn::make_layer(kind, name, a);
}

std::vector<Tensor> run(const nn::Layer& l, std::vector<Tensor> in, std::vector<Tensor> w = {}, bool training = false,
                        uint64_t seed = 7) {
  Generator g(seed);
  nn::Context ctx;
  ctx.training = training;
  ctx.rng = &g;
  return l.forward(in, w, ctx);
}

Tensor run1(const nn::Layer& l, std::vector<Tensor> in, std::vector<Tensor> w = {}, bool training = false) {
  return run(l, std::move(in), std::move(w), training)[0];
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

void expect_shape(const std::vector<PartialShape>& got, const PartialShape& want) {
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], want) << nn::shape_str(got[0]) << " vs " << nn::shape_str(want);
}

// ------------------------------------------------------------------------------ attrs, misc

TEST(LayersAttrs, GettersDefaultsAndErrors) {
  Attrs a = A({{"units", {3}}, {"rate", {0.25}}, {"flag", {0}}, {"axes", {1, NAN, 3}}, {"na", {NAN}}},
              {{"activation", "relu"}});
  EXPECT_EQ(a.integer("units", 0), 3);
  EXPECT_EQ(a.integer("missing", 9), 9);
  EXPECT_DOUBLE_EQ(a.num("rate"), 0.25);
  EXPECT_DOUBLE_EQ(a.num("missing", 1.5), 1.5);
  EXPECT_TRUE(std::isnan(a.num("na", 0.0)));
  EXPECT_FALSE(a.flag("flag", true));
  EXPECT_TRUE(a.flag("missing", true));
  EXPECT_EQ(a.str("activation", "linear"), "relu");
  EXPECT_EQ(a.str("missing", "linear"), "linear");
  EXPECT_EQ(a.ints("axes"), (std::vector<int64_t>{1, -1, 3}));
  EXPECT_TRUE(a.ints("missing").empty());
  EXPECT_EQ(a.nums("rate"), std::vector<double>{0.25});
  expect_error<ValueError>([&] { a.num("needed"); }, "required setting `needed` is missing");
  expect_error<ValueError>([&] { a.num("activation", 0); }, "setting `activation` must be a number");
  expect_error<ValueError>([&] { a.str("units", ""); }, "setting `units` must be a string");
  expect_error<ValueError>([&] { a.integer("rate", 0); }, "setting `rate` must be a single whole number");
  expect_error<ValueError>([&] { a.num("axes", 0); }, "must be a single number");
  expect_error<ValueError>([&] { a.flag("na", false); }, "must be TRUE or FALSE");
}

TEST(LayersMisc, ShapeStrRegistryAndUnknownKind) {
  EXPECT_EQ(nn::shape_str({-1, 784}), "(None, 784)");
  EXPECT_EQ(nn::shape_str({-1}), "(None,)");
  EXPECT_EQ(nn::shape_str({}), "()");
  for (const char* k : {"Dense", "Activation", "Dropout", "Flatten", "Reshape", "Permute", "RepeatVector", "Identity",
                        "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Add", "Subtract",
                        "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot", "LeakyReLU", "PReLU", "ELU",
                        "ReLU", "Softmax"})
    EXPECT_TRUE(nn::has_layer(k)) << k;
  EXPECT_FALSE(nn::has_layer("Conv7D"));
  expect_error<ValueError>([] { L("Conv7D"); }, "Unknown layer class \"Conv7D\"");
  auto l = L("Dense", A({{"units", {2}}}), "my_dense");
  EXPECT_EQ(l->kind(), "Dense");
  EXPECT_EQ(l->name(), "my_dense");
  EXPECT_EQ(l->num_inputs(), 1);
}

// ------------------------------------------------------------------------------------ Dense

TEST(LayersDense, ValuesHandComputed) {
  // x [2,3] . kernel [3,2] + bias, then relu
  Tensor x = make({2, 3}, {1, 2, 3, -1, 0, 2});
  Tensor k = make({3, 2}, {0.5, -1, 1, 0, -0.5, 2});
  Tensor b = make({2}, {0.1, -0.2});
  // row0: [0.5+2-1.5, -1+0+6] = [1, 5]; row1: [-0.5+0-1, 1+0+4] = [-1.5, 5]
  expect_values(run1(*L("Dense", A({{"units", {2}}})), {x}, {k, b}), {1.1, 4.8, -1.4, 4.8});
  expect_values(run1(*L("Dense", A({{"units", {2}}}, {{"activation", "relu"}})), {x}, {k, b}), {1.1, 4.8, 0, 4.8});
  expect_values(run1(*L("Dense", A({{"units", {2}}, {"use_bias", {0}}})), {x}, {k}), {1, 5, -1.5, 5});
}

TEST(LayersDense, Rank3InputSharesTheKernel) {
  Tensor x = rand({2, 3, 4}, -1, 1, 3);
  Tensor k = rand({4, 5}, -1, 1, 4), b = rand({5}, -1, 1, 5);
  Tensor y = run1(*L("Dense", A({{"units", {5}}})), {x}, {k, b});
  ASSERT_EQ(y.shape(), Shape({2, 3, 5}));
  std::vector<double> xv = values(x), kv = values(k), bv = values(b), want(30);
  for (int r = 0; r < 6; ++r)
    for (int j = 0; j < 5; ++j) {
      double s = bv[j];
      for (int i = 0; i < 4; ++i) s += xv[r * 4 + i] * kv[i * 5 + j];
      want[r * 5 + j] = s;
    }
  expect_values(y, want, 1e-12);
}

TEST(LayersDense, ShapesWeightSpecsAndErrors) {
  auto d = L("Dense", A({{"units", {10}}}), "dense_1");
  expect_shape(d->output_shapes({{-1, 784}}), {-1, 10});
  expect_shape(d->output_shapes({{-1, 7, 3}}), {-1, 7, 10});
  auto ws = d->weight_specs({{-1, 784}});
  ASSERT_EQ(ws.size(), 2u);
  EXPECT_EQ(ws[0].name, "kernel");
  EXPECT_EQ(ws[0].shape, (std::vector<int64_t>{784, 10}));
  EXPECT_TRUE(ws[0].trainable);
  EXPECT_EQ(ws[1].name, "bias");
  EXPECT_EQ(ws[1].shape, std::vector<int64_t>{10});
  EXPECT_EQ(L("Dense", A({{"units", {3}}, {"use_bias", {0}}}))->weight_specs({{-1, 4}}).size(), 1u);
  expect_error<ShapeError>([&] { d->output_shapes({{-1}}); },
                           "Input 0 of layer \"dense_1\" is incompatible with the layer: expected min_ndim=2, found "
                           "ndim=1. Full shape received: (None,)");
  expect_error<ShapeError>([&] { d->output_shapes({{-1, -1}}); }, "should be defined");
  expect_error<ValueError>([&] { d->output_shapes({{-1, 3}, {-1, 3}}); },
                           "Layer \"dense_1\" expects 1 input(s), but it received 2 input tensors");
  // The Keras message for a feature-count mismatch at call time.
  Tensor x = Tensor::empty(Shape({5, 783}));
  Tensor k = ops::zeros(Shape({784, 10})), b = ops::zeros(Shape({10}));
  expect_error<ShapeError>([&] { run(*d, {x}, {k, b}); },
                           "Input 0 of layer \"dense_1\" is incompatible with the layer: expected axis -1 of input "
                           "shape to have value 784, but received input with shape (5, 783)");
  expect_error<ValueError>([&] { run(*d, {x}, {k}); }, "expects 2 weight(s), but received 1");
  expect_error<ValueError>([] { L("Dense", A({{"units", {0}}})); }, "expected a positive integer");
  expect_error<ValueError>([] { L("Dense"); }, "Received: units=None");
  expect_error<ValueError>([] { L("Dense", A({{"units", {2}}}, {{"activation", "relux"}})); },
                           "Could not interpret activation function identifier: \"relux\"");
}

TEST(LayersDense, Gradcheck) {
  auto d = L("Dense", A({{"units", {3}}}, {{"activation", "tanh"}}));
  gradcheck([&](const std::vector<Tensor>& v) { return run1(*d, {v[0]}, {v[1], v[2]}); },
            {rand({4, 5}, -1, 1, 1), rand({5, 3}, -1, 1, 2), rand({3}, -1, 1, 3)});
  gradcheck([&](const std::vector<Tensor>& v) { return run1(*d, {v[0]}, {v[1], v[2]}); },
            {rand({2, 3, 5}, -1, 1, 4), rand({5, 3}, -1, 1, 5), rand({3}, -1, 1, 6)});
  auto s = L("Dense", A({{"units", {4}}}, {{"activation", "softmax"}}));
  gradcheck([&](const std::vector<Tensor>& v) { return run1(*s, {v[0]}, {v[1], v[2]}); },
            {rand({3, 2}, -1, 1, 7), rand({2, 4}, -1, 1, 8), rand({4}, -1, 1, 9)});
}

// ------------------------------------------------------------------------------ activations

struct ActCase {
  const char* name;
  std::function<double(double)> f;
};

double sigm(double x) { return 1 / (1 + std::exp(-x)); }
double softplus_ref(double x) { return std::log1p(std::exp(x)); }

std::vector<ActCase> act_cases() {
  const double sa = 1.6732632423543772, ss = 1.0507009873554805;
  return {
      {"linear", [](double x) { return x; }},
      {"relu", [](double x) { return x > 0 ? x : 0; }},
      {"relu6", [](double x) { return std::min(std::max(x, 0.0), 6.0); }},
      {"sigmoid", sigm},
      {"hard_sigmoid", [](double x) { return std::min(std::max(x + 3, 0.0), 6.0) / 6; }},
      {"tanh", [](double x) { return std::tanh(x); }},
      {"elu", [](double x) { return x > 0 ? x : std::expm1(x); }},
      {"selu", [=](double x) { return ss * (x > 0 ? x : sa * std::expm1(x)); }},
      {"softplus", softplus_ref},
      {"softsign", [](double x) { return x / (1 + std::fabs(x)); }},
      {"gelu", [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }},
      {"silu", [](double x) { return x * sigm(x); }},
      {"swish", [](double x) { return x * sigm(x); }},
      {"mish", [](double x) { return x * std::tanh(softplus_ref(x)); }},
      {"exponential", [](double x) { return std::exp(x); }},
      {"leaky_relu", [](double x) { return x > 0 ? x : 0.2 * x; }},
      {"hard_silu", [](double x) { return x * std::min(std::max(x + 3, 0.0), 6.0) / 6; }},
      {"hard_swish", [](double x) { return x * std::min(std::max(x + 3, 0.0), 6.0) / 6; }},
      {"hard_tanh", [](double x) { return std::min(std::max(x, -1.0), 1.0); }},
      {"log_sigmoid", [](double x) { return std::log(sigm(x)); }},
      {"celu", [](double x) { return x > 0 ? x : std::expm1(x); }},
      {"tanh_shrink", [](double x) { return x - std::tanh(x); }},
      {"soft_shrink", [](double x) { return x > 0.5 ? x - 0.5 : x < -0.5 ? x + 0.5 : 0; }},
      {"hard_shrink", [](double x) { return std::fabs(x) > 0.5 ? x : 0; }},
      {"squareplus", [](double x) { return (x + std::sqrt(x * x + 4)) / 2; }},
      {"sparse_plus", [](double x) { return x <= -1 ? 0 : x >= 1 ? x : (x + 1) * (x + 1) / 4; }},
  };
}

TEST(LayersActivation, EveryNameAgainstItsFormula) {
  // Points avoid the kinks (0, +-0.5, +-1, -3, 3, 6) so the gradchecks are valid too.
  std::vector<double> xs{-4.2, -2.7, -1.3, -0.8, -0.3, 0.2, 0.7, 1.6, 2.9, 4.4, 6.5, -6.2};
  for (const auto& c : act_cases()) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(nn::has_activation(c.name));
    std::vector<double> want;
    for (double x : xs) want.push_back(c.f(x));
    Tensor x = make({3, 4}, xs);
    expect_values(nn::apply_activation(c.name, x), want, 1e-12, 1e-10);
    // float32 keeps its dtype through the composite forms
    Tensor y32 = nn::apply_activation(c.name, make({3, 4}, xs, DType::Float32));
    EXPECT_EQ(y32.dtype(), DType::Float32);
    expect_values(y32, want, 1e-5, 1e-5);
    // The layer form is the same function.
    expect_values(run1(*L("Activation", A({}, {{"activation", c.name}})), {x}), want, 1e-12, 1e-10);
    if (std::string(c.name) != "linear")
      gradcheck([&](const std::vector<Tensor>& v) { return nn::apply_activation(c.name, v[0]); }, {make({3, 4}, xs)});
  }
}

TEST(LayersActivation, SoftmaxFamilyAndUnknownName) {
  Tensor x = make({2, 3}, {1, 2, 3, 0, 0, 0});
  double s = std::exp(1) + std::exp(2) + std::exp(3);
  expect_values(nn::apply_activation("softmax", x),
                {std::exp(1) / s, std::exp(2) / s, std::exp(3) / s, 1. / 3, 1. / 3, 1. / 3}, 1e-12);
  expect_values(nn::apply_activation("log_softmax", x),
                {1 - std::log(s), 2 - std::log(s), 3 - std::log(s), -std::log(3.), -std::log(3.), -std::log(3.)}, 1e-12);
  gradcheck([](const std::vector<Tensor>& v) { return nn::apply_activation("softmax", v[0]); }, {rand({2, 3})});
  EXPECT_FALSE(nn::has_activation("relux"));
  expect_error<ValueError>([&] { nn::apply_activation("relux", x); }, "known activations: \"linear\", \"relu\"");
}

// ---------------------------------------------------------------------------- Dropout family

TEST(LayersDropout, InferenceIsIdentityTrainingScalesKeptUnits) {
  auto d = L("Dropout", A({{"rate", {0.5}}}));
  Tensor x = ops::ones(Shape({100, 50}));
  Tensor y = run1(*d, {x});
  EXPECT_TRUE(y.is_same(x));
  Tensor t = run1(*d, {x}, {}, true);
  std::vector<double> v = values(t);
  int zeros = 0;
  for (double e : v) {
    EXPECT_TRUE(e == 0.0 || e == 2.0) << e;
    zeros += e == 0.0;
  }
  EXPECT_NEAR(zeros / 5000.0, 0.5, 0.04);
  // Same seed, same mask; another seed, another mask.
  EXPECT_EQ(values(run(*d, {x}, {}, true, 11)[0]), values(run(*d, {x}, {}, true, 11)[0]));
  EXPECT_NE(values(run(*d, {x}, {}, true, 11)[0]), values(run(*d, {x}, {}, true, 12)[0]));
  // rate 0 is the identity even in training; rate 1 drops everything.
  EXPECT_TRUE(run1(*L("Dropout", A({{"rate", {0}}})), {x}, {}, true).is_same(x));
  for (double e : values(run1(*L("Dropout", A({{"rate", {1}}})), {x}, {}, true))) EXPECT_EQ(e, 0.0);
  expect_error<ValueError>([] { L("Dropout", A({{"rate", {1.5}}})); }, "Received: rate=1.5");
  expect_shape(d->output_shapes({{-1, 7, 3}}), {-1, 7, 3});
}

TEST(LayersDropout, NoiseShapeBroadcastsTheMask) {
  // noise_shape (None, 1, None): one mask value per (batch, feature), shared along axis 1.
  auto d = L("Dropout", A({{"rate", {0.5}}, {"noise_shape", {NAN, 1, NAN}}}));
  Tensor x = ops::ones(Shape({4, 6, 5}));
  std::vector<double> v = values(run1(*d, {x}, {}, true));
  for (int b = 0; b < 4; ++b)
    for (int j = 1; j < 6; ++j)
      for (int f = 0; f < 5; ++f) EXPECT_EQ(v[(b * 6 + j) * 5 + f], v[(b * 6) * 5 + f]);
  auto bad = L("Dropout", A({{"rate", {0.5}}, {"noise_shape", {NAN, 2}}}));
  expect_error<ShapeError>([&] { run(*bad, {x}, {}, true); }, "noise_shape (None, 2) must have one entry per axis");
}

TEST(LayersDropout, GradcheckWithAFixedMask) {
  auto d = L("Dropout", A({{"rate", {0.3}}}));
  // run() reseeds its generator on every call, so the mask is the same for each evaluation.
  gradcheck([&](const std::vector<Tensor>& v) { return run1(*d, {v[0]}, {}, true); }, {rand({4, 5})});
}

TEST(LayersNoise, GaussianNoiseAndGaussianDropoutStatistics) {
  const int n = 200000;
  Tensor zeros = ops::zeros(Shape({n}));
  auto gn = L("GaussianNoise", A({{"stddev", {0.5}}}));
  EXPECT_TRUE(run1(*gn, {zeros}).is_same(zeros));
  std::vector<double> v = values(run1(*gn, {zeros}, {}, true));
  double m = 0, s2 = 0;
  for (double e : v) m += e;
  m /= n;
  for (double e : v) s2 += (e - m) * (e - m);
  EXPECT_NEAR(m, 0.0, 0.01);
  EXPECT_NEAR(std::sqrt(s2 / n), 0.5, 0.01);

  Tensor ones = ops::ones(Shape({n}));
  auto gd = L("GaussianDropout", A({{"rate", {0.2}}}));
  EXPECT_TRUE(run1(*gd, {ones}).is_same(ones));
  v = values(run1(*gd, {ones}, {}, true));
  m = 0, s2 = 0;
  for (double e : v) m += e;
  m /= n;
  for (double e : v) s2 += (e - m) * (e - m);
  EXPECT_NEAR(m, 1.0, 0.01);
  EXPECT_NEAR(std::sqrt(s2 / n), std::sqrt(0.2 / 0.8), 0.01);

  gradcheck([&](const std::vector<Tensor>& t) { return run1(*gn, {t[0]}, {}, true); }, {rand({3, 4})});
  gradcheck([&](const std::vector<Tensor>& t) { return run1(*gd, {t[0]}, {}, true); }, {rand({3, 4})});
}

TEST(LayersNoise, AlphaDropoutKeepsSeluStatistics) {
  const double rate = 0.2, alpha_p = -1.6732632423543772 * 1.0507009873554805;
  const double a = std::pow((1 - rate) * (1 + rate * alpha_p * alpha_p), -0.5), b = -a * alpha_p * rate;
  auto ad = L("AlphaDropout", A({{"rate", {rate}}}));
  Tensor x = make({2, 3}, {0.5, -1, 2, 0, 1, -0.25});
  EXPECT_TRUE(run1(*ad, {x}).is_same(x));
  // Each output is either a*x+b (kept) or a*alpha_p+b (dropped).
  std::vector<double> xv = values(x), yv = values(run1(*ad, {x}, {}, true));
  for (size_t i = 0; i < xv.size(); ++i) {
    bool kept = std::fabs(yv[i] - (a * xv[i] + b)) < 1e-12, dropped = std::fabs(yv[i] - (a * alpha_p + b)) < 1e-12;
    EXPECT_TRUE(kept || dropped) << yv[i];
  }
  // Standard-normal input keeps mean 0 and variance 1 (the point of alpha dropout).
  const int n = 200000;
  Tensor z = ops::random_normal(Shape({n}), 0, 1, DType::Float64);
  std::vector<double> v = values(run1(*ad, {z}, {}, true));
  double m = 0, s2 = 0;
  for (double e : v) m += e;
  m /= n;
  for (double e : v) s2 += (e - m) * (e - m);
  EXPECT_NEAR(m, 0.0, 0.02);
  EXPECT_NEAR(s2 / n, 1.0, 0.03);
  gradcheck([&](const std::vector<Tensor>& t) { return run1(*ad, {t[0]}, {}, true); }, {rand({3, 4})});
  expect_error<ValueError>([] { L("AlphaDropout", A({{"rate", {1}}})); }, "Received: rate=1");
}

TEST(LayersActivityRegularization, PushesL1L2WithoutBatchDivision) {
  auto ar = L("ActivityRegularization", A({{"l1", {0.1}}, {"l2", {0.01}}}));
  Tensor x = make({2, 2}, {1, -2, 3, -4});
  nn::Context ctx;
  std::vector<Tensor> y = ar->forward({x}, {}, ctx);
  EXPECT_TRUE(y[0].is_same(x));
  ASSERT_EQ(ctx.extra_losses.size(), 1u);
  EXPECT_NEAR(ctx.extra_losses[0].item(), 0.1 * 10 + 0.01 * 30, 1e-12);  // Keras 3: not divided by the batch size
  nn::Context ctx0;
  L("ActivityRegularization")->forward({x}, {}, ctx0);
  EXPECT_TRUE(ctx0.extra_losses.empty());
  gradcheck(
      [&](const std::vector<Tensor>& v) {
        nn::Context c;
        ar->forward({v[0]}, {}, c);
        return c.extra_losses[0];
      },
      {rand({3, 4})});
}

// ------------------------------------------------------------------------- reshaping layers

TEST(LayersReshaping, FlattenReshapePermuteRepeatVectorIdentity) {
  Tensor x = rand({2, 3, 4}, -1, 1, 21);
  std::vector<double> xv = values(x);
  // Flatten keeps the batch axis and the row-major order.
  Tensor f = run1(*L("Flatten"), {x});
  EXPECT_EQ(f.shape(), Shape({2, 12}));
  expect_values(f, xv, 0);
  expect_shape(L("Flatten")->output_shapes({{-1, 3, 4}}), {-1, 12});
  expect_shape(L("Flatten")->output_shapes({{-1, -1, 4}}), {-1, -1});
  expect_shape(L("Flatten")->output_shapes({{-1}}), {-1, 1});
  // channels_first moves axis 1 last before flattening.
  Tensor fc = run1(*L("Flatten", A({}, {{"data_format", "channels_first"}})), {x});
  std::vector<double> want;
  for (int b = 0; b < 2; ++b)
    for (int k = 0; k < 4; ++k)
      for (int j = 0; j < 3; ++j) want.push_back(xv[(b * 3 + j) * 4 + k]);
  expect_values(fc, want, 0);

  auto r = L("Reshape", A({{"target_shape", {4, -1}}}), "reshape");
  Tensor rx = run1(*r, {x});
  EXPECT_EQ(rx.shape(), Shape({2, 4, 3}));
  expect_values(rx, xv, 0);
  expect_shape(r->output_shapes({{-1, 3, 4}}), {-1, 4, 3});
  expect_shape(r->output_shapes({{-1, -1, 4}}), {-1, 4, -1});
  expect_error<ShapeError>([&] { r->output_shapes({{-1, 5, 3}}); },
                           "total size of the new array must be unchanged, input_shape = (5, 3), output_shape = (4, -1)");
  expect_error<ShapeError>([&] { L("Reshape", A({{"target_shape", {2, 2, 3}}}))->output_shapes({{-1, 13}}); },
                           "total size of the new array must be unchanged");
  expect_error<ValueError>([] { L("Reshape", A({{"target_shape", {-1, -1}}})); }, "at most one unknown dimension");

  auto p = L("Permute", A({{"dims", {2, 1}}}));
  Tensor px = run1(*p, {x});
  EXPECT_EQ(px.shape(), Shape({2, 4, 3}));
  want.clear();
  for (int b = 0; b < 2; ++b)
    for (int k = 0; k < 4; ++k)
      for (int j = 0; j < 3; ++j) want.push_back(xv[(b * 3 + j) * 4 + k]);
  expect_values(px, want, 0);
  expect_shape(p->output_shapes({{-1, 3, 4}}), {-1, 4, 3});
  expect_error<ShapeError>([&] { p->output_shapes({{-1, 3}}); }, "expected ndim=3, found ndim=2");
  expect_error<ValueError>([] { L("Permute", A({{"dims", {0, 1}}})); }, "must be consecutive and start from 1");

  auto rv = L("RepeatVector", A({{"n", {3}}}));
  Tensor v2 = make({2, 2}, {1, 2, 3, 4});
  Tensor rvx = run1(*rv, {v2});
  EXPECT_EQ(rvx.shape(), Shape({2, 3, 2}));
  expect_values(rvx, {1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}, 0);
  expect_shape(rv->output_shapes({{-1, 4}}), {-1, 3, 4});
  expect_error<ShapeError>([&] { rv->output_shapes({{-1, 4, 2}}); }, "expected ndim=2, found ndim=3");

  EXPECT_TRUE(run1(*L("Identity"), {x}).is_same(x));

  gradcheck([&](const std::vector<Tensor>& v) { return run1(*L("Flatten"), {v[0]}); }, {rand({2, 3, 2})});
  gradcheck([&](const std::vector<Tensor>& v) { return run1(*r, {v[0]}); }, {rand({2, 3, 4})});
  gradcheck([&](const std::vector<Tensor>& v) { return run1(*p, {v[0]}); }, {rand({2, 3, 4})});
  gradcheck([&](const std::vector<Tensor>& v) { return run1(*rv, {v[0]}); }, {rand({2, 4})});
}

// ------------------------------------------------------------------------- activation layers

TEST(LayersActivationLayers, LeakyReluEluReluSoftmax) {
  std::vector<double> xs{-3, -1.5, -0.2, 0.3, 1.7, 7.5};
  Tensor x = make({2, 3}, xs);
  auto each = [&](std::function<double(double)> f) {
    std::vector<double> out;
    for (double v : xs) out.push_back(f(v));
    return out;
  };
  expect_values(run1(*L("LeakyReLU"), {x}), each([](double v) { return v > 0 ? v : 0.3 * v; }), 1e-12);
  expect_values(run1(*L("LeakyReLU", A({{"negative_slope", {0.1}}})), {x}),
                each([](double v) { return v > 0 ? v : 0.1 * v; }), 1e-12);
  expect_values(run1(*L("LeakyReLU", A({{"alpha", {0.05}}})), {x}), each([](double v) { return v > 0 ? v : 0.05 * v; }),
                1e-12);
  expect_values(run1(*L("ELU", A({{"alpha", {0.5}}})), {x}), each([](double v) { return v > 0 ? v : 0.5 * std::expm1(v); }),
                1e-12);
  expect_values(run1(*L("ReLU"), {x}), each([](double v) { return v > 0 ? v : 0; }), 1e-12);
  expect_values(run1(*L("ReLU", A({{"max_value", {6}}})), {x}), each([](double v) { return std::min(std::max(v, 0.), 6.); }),
                1e-12);
  expect_values(run1(*L("ReLU", A({{"max_value", {NAN}}})), {x}), each([](double v) { return v > 0 ? v : 0; }), 1e-12);
  // Keras 3 relu(x, negative_slope, max_value, threshold)
  auto keras_relu = [](double slope, double maxv, double thr) {
    return [=](double v) {
      if (!std::isnan(maxv) && v >= maxv) return maxv;
      if (v > thr) return v;
      return slope * (v - thr);
    };
  };
  expect_values(run1(*L("ReLU", A({{"max_value", {1}}, {"negative_slope", {0.1}}, {"threshold", {0.5}}})), {x}),
                each(keras_relu(0.1, 1, 0.5)), 1e-12);
  expect_values(run1(*L("ReLU", A({{"negative_slope", {0.2}}, {"threshold", {-1}}})), {x}),
                each([](double v) { return v > -1 ? v : 0.2 * (v + 1); }), 1e-12);
  expect_values(run1(*L("ReLU", A({{"threshold", {0.5}}})), {x}), each(keras_relu(0, NAN, 0.5)), 1e-12);
  expect_values(run1(*L("ReLU", A({{"negative_slope", {0.25}}, {"max_value", {2}}})), {x}),
                each(keras_relu(0.25, 2, 0)), 1e-12);
  expect_error<ValueError>([] { L("ReLU", A({{"max_value", {-1}}})); }, "cannot be a negative value");

  Tensor s = run1(*L("Softmax", A({{"axis", {1}}})), {make({2, 2, 2}, {0, 1, 2, 3, 0, 0, 1, 1})});
  // axis 1 pairs (x[b,0,k], x[b,1,k]): batch 0 (0, 2) and (1, 3); batch 1 (0, 1) twice.
  double e2 = 1 / (1 + std::exp(2.)), e1 = 1 / (1 + std::exp(1.));
  expect_values(s, {e2, e2, 1 - e2, 1 - e2, e1, e1, 1 - e1, 1 - e1}, 1e-12);
  Tensor s2 = run1(*L("Softmax", A({{"axis", {1, 2}}})), {make({1, 2, 2}, {0, 0, 0, std::log(5.)})});
  expect_values(s2, {0.125, 0.125, 0.125, 0.625}, 1e-12);

  for (auto* l : {L("LeakyReLU").release(), L("ELU").release(),
                  L("ReLU", A({{"max_value", {1}}, {"negative_slope", {0.1}}, {"threshold", {0.5}}})).release(),
                  L("Softmax").release()}) {
    std::unique_ptr<nn::Layer> own(l);
    SCOPED_TRACE(l->kind());
    gradcheck([&](const std::vector<Tensor>& v) { return run1(*own, {v[0]}); }, {make({2, 3}, xs)});
  }
}

TEST(LayersActivationLayers, PReluWeightSpecsValuesAndGradients) {
  auto p = L("PReLU", A(), "p_re_lu");
  auto ws = p->weight_specs({{-1, 5}});
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws[0].name, "alpha");
  EXPECT_EQ(ws[0].shape, std::vector<int64_t>{5});
  auto shared = L("PReLU", A({{"shared_axes", {1, 2}}}));
  EXPECT_EQ(shared->weight_specs({{-1, 8, 8, 3}})[0].shape, (std::vector<int64_t>{1, 1, 3}));
  EXPECT_EQ(shared->weight_specs({{-1, -1, -1, 3}})[0].shape, (std::vector<int64_t>{1, 1, 3}));
  expect_error<ShapeError>([&] { p->weight_specs({{-1, -1, 3}}); }, "must be defined");
  expect_error<ShapeError>([&] { L("PReLU", A({{"shared_axes", {3}}}))->weight_specs({{-1, 4, 2}}); }, "out of range");
  Tensor x = make({2, 3}, {-2, 1, -0.5, 3, -1, 0.25});
  Tensor alpha = make({3}, {0.1, 0.2, 0.3});
  expect_values(run1(*p, {x}, {alpha}), {-0.2, 1, -0.15, 3, -0.2, 0.25}, 1e-12);
  gradcheck([&](const std::vector<Tensor>& v) { return run1(*shared, {v[0]}, {v[1]}); },
            {rand({2, 2, 3, 2}, -1, 1, 30), rand({1, 1, 2}, 0.05, 0.5, 31)});
}

TEST(LayersConformance, DenseThenPReluFixture) {
  // 02_layer_prelu: Dense(5, linear) -> PReLU, tolerance atol 1e-5, rtol 1e-4 (float32).
  auto d = L("Dense", A({{"units", {5}}}), "dense");
  auto p = L("PReLU", A(), "p_re_lu");
  Tensor x = from(k02_layer_prelu_input0_shape, k02_layer_prelu_input0);
  Tensor h = run1(*d, {x}, {from(k02_layer_prelu_weight0_shape, k02_layer_prelu_weight0),
                             from(k02_layer_prelu_weight1_shape, k02_layer_prelu_weight1)});
  Tensor y = run1(*p, {h}, {from(k02_layer_prelu_weight2_shape, k02_layer_prelu_weight2)});
  EXPECT_EQ(y.dtype(), DType::Float32);
  EXPECT_EQ(y.shape(), Shape(k02_layer_prelu_output0_shape));
  expect_values(y, k02_layer_prelu_output0, 1e-5, 1e-4);
}

// ------------------------------------------------------------------------------------ merges

TEST(LayersMerge, ElementwiseValues) {
  Tensor a = make({2, 2}, {1, -2, 3, 4}), b = make({2, 2}, {0.5, 5, -3, 2}), c = make({2, 2}, {2, 0, 1, -1});
  expect_values(run1(*L("Add"), {a, b, c}), {3.5, 3, 1, 5}, 1e-12);
  expect_values(run1(*L("Subtract"), {a, b}), {0.5, -7, 6, 2}, 1e-12);
  expect_values(run1(*L("Multiply"), {a, b, c}), {1, 0, -9, -8}, 1e-12);
  expect_values(run1(*L("Average"), {a, b}), {0.75, 1.5, 0, 3}, 1e-12);
  expect_values(run1(*L("Maximum"), {a, b, c}), {2, 5, 3, 4}, 1e-12);
  expect_values(run1(*L("Minimum"), {a, b, c}), {0.5, -2, -3, -1}, 1e-12);
  expect_error<ValueError>([&] { run(*L("Subtract", Attrs(), "sub"), {a, b, c}); },
                           "Layer \"sub\" expects 2 input(s), but it received 3");
  expect_error<ValueError>([&] { run(*L("Add"), {a}); }, "at least 2 inputs");
}

TEST(LayersMerge, BroadcastsNonBatchAxesLikeKeras) {
  // (2, 3, 4) + (2, 4): Keras inserts the missing axis after the batch axis.
  Tensor x = rand({2, 3, 4}, -1, 1, 40), y = rand({2, 4}, -1, 1, 41);
  std::vector<double> xv = values(x), yv = values(y), want;
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j) want.push_back(xv[(b * 3 + i) * 4 + j] + yv[b * 4 + j]);
  expect_values(run1(*L("Add"), {x, y}), want, 1e-12);
  auto add = L("Add", Attrs(), "add");
  expect_shape(add->output_shapes({{-1, 3, 4}, {-1, 4}}), {-1, 3, 4});
  expect_shape(add->output_shapes({{-1, 1, 4}, {-1, 5, 1}}), {-1, 5, 4});
  expect_shape(add->output_shapes({{8, -1}, {-1, 3}}), {8, -1});
  expect_error<ShapeError>([&] { add->output_shapes({{-1, 4}, {-1, 3}}); },
                           "Layer \"add\" (Add): Inputs have incompatible shapes. Received shapes [(None, 4), (None, 3)]");
  expect_error<ShapeError>([&] { add->output_shapes({{2, 4}, {3, 4}}); }, "Cannot merge tensors with different batch sizes");
  for (const char* k : {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}) {
    SCOPED_TRACE(k);
    auto l = L(k);
    gradcheck([&](const std::vector<Tensor>& v) { return run1(*l, {v[0], v[1]}); },
              {rand({2, 3, 4}, -1, 1, 42), rand({2, 4}, -1, 1, 43)});
  }
}

TEST(LayersMerge, Concatenate) {
  Tensor a = make({2, 2}, {1, 2, 3, 4}), b = make({2, 1}, {5, 6});
  auto c = L("Concatenate", Attrs(), "concatenate");
  expect_values(run1(*c, {a, b}), {1, 2, 5, 3, 4, 6}, 0);
  expect_shape(c->output_shapes({{-1, 2}, {-1, 1}}), {-1, 3});
  expect_shape(c->output_shapes({{-1, 2}, {-1, -1}}), {-1, -1});
  auto c1 = L("Concatenate", A({{"axis", {1}}}));
  Tensor x = rand({2, 3, 2}), y = rand({2, 1, 2}, -1, 1, 5);
  Tensor z = run1(*c1, {x, y});
  EXPECT_EQ(z.shape(), Shape({2, 4, 2}));
  expect_shape(c1->output_shapes({{-1, 3, 2}, {-1, 1, 2}}), {-1, 4, 2});
  expect_error<ShapeError>([&] { c->output_shapes({{-1, 2, 3}, {-1, 3, 3}}); },
                           "A `Concatenate` layer requires inputs with matching shapes except for the concatenation "
                           "axis. Received: input_shape=[(None, 2, 3), (None, 3, 3)]");
  expect_error<ShapeError>([&] { run(*c, {x, a}); }, "requires inputs with matching shapes");
  gradcheck([&](const std::vector<Tensor>& v) { return run1(*c1, {v[0], v[1]}); }, {rand({2, 3, 2}), rand({2, 1, 2})});
}

TEST(LayersMerge, DotFixtureAndAxes) {
  // 10_merge_dot_3d_axes2: Dot(axes = c(2, 2)) of (2, 3, 4) and (2, 5, 4) -> (2, 3, 5).
  auto dot = L("Dot", A({{"axes", {2, 2}}}), "merge");
  Tensor a = from(k10_merge_dot_3d_axes2_input0_shape, k10_merge_dot_3d_axes2_input0);
  Tensor b = from(k10_merge_dot_3d_axes2_input1_shape, k10_merge_dot_3d_axes2_input1);
  Tensor y = run1(*dot, {a, b});
  EXPECT_EQ(y.shape(), Shape(k10_merge_dot_3d_axes2_output0_shape));
  expect_values(y, k10_merge_dot_3d_axes2_output0, 1e-5, 1e-4);
  expect_shape(dot->output_shapes({{-1, 3, 4}, {-1, 5, 4}}), {-1, 3, 5});
  // Same with negative axes.
  expect_values(run1(*L("Dot", A({{"axes", {-1}}})), {a, b}), k10_merge_dot_3d_axes2_output0, 1e-5, 1e-4);

  // axes = 1 on (batch, n): row-wise dot products, shape (batch, 1).
  Tensor u = make({2, 3}, {1, 2, 3, 4, 5, 6}), v = make({2, 3}, {1, 0, -1, 2, 2, 2});
  auto d1 = L("Dot", A({{"axes", {1}}}));
  Tensor uv = run1(*d1, {u, v});
  EXPECT_EQ(uv.shape(), Shape({2, 1}));
  expect_values(uv, {-2, 30}, 1e-12);
  expect_shape(d1->output_shapes({{-1, 3}, {-1, 3}}), {-1, 1});
  // normalize = TRUE gives cosine similarities.
  auto dn = L("Dot", A({{"axes", {1}}, {"normalize", {1}}}));
  expect_values(run1(*dn, {u, v}), {-2 / (std::sqrt(14.) * std::sqrt(2.)), 30 / (std::sqrt(77.) * std::sqrt(12.))}, 1e-12);
  // axes (1, 2) on (b, 3, 2) . (b, 4, 3) -> (b, 2, 4)
  auto d12 = L("Dot", A({{"axes", {1, 2}}}));
  Tensor p = rand({2, 3, 2}, -1, 1, 50), q = rand({2, 4, 3}, -1, 1, 51);
  std::vector<double> pv = values(p), qv = values(q), want;
  for (int bb = 0; bb < 2; ++bb)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 4; ++j) {
        double s = 0;
        for (int k = 0; k < 3; ++k) s += pv[(bb * 3 + k) * 2 + i] * qv[(bb * 4 + j) * 3 + k];
        want.push_back(s);
      }
  Tensor pq = run1(*d12, {p, q});
  EXPECT_EQ(pq.shape(), Shape({2, 2, 4}));
  expect_values(pq, want, 1e-12);
  // (b, 3) . (b, 4, 3) with axes (1, 2) -> (b, 4)
  expect_shape(d12->output_shapes({{-1, 3}, {-1, 4, 3}}), {-1, 4});

  expect_error<ShapeError>([&] { dot->output_shapes({{-1, 3, 4}, {-1, 5, 3}}); },
                           "Incompatible input shapes: axis values 4 (at axis 2) != 3 (at axis 2). Full input shapes: "
                           "(None, 3, 4), (None, 5, 3)");
  expect_error<ShapeError>([&] { L("Dot", A({{"axes", {0}}}))->output_shapes({{-1, 3}, {-1, 3}}); },
                           "Cannot perform batch_dot over axis 0");
  expect_error<ValueError>([] { L("Dot", A({{"axes", {1, 2, 3}}})); }, "Invalid format for argument `axes`");

  gradcheck([&](const std::vector<Tensor>& t) { return run1(*d12, {t[0], t[1]}); }, {rand({2, 3, 2}), rand({2, 4, 3})});
  gradcheck([&](const std::vector<Tensor>& t) { return run1(*dn, {t[0], t[1]}); }, {rand({2, 3}), rand({2, 3}, -1, 1, 3)});
  auto dn3 = L("Dot", A({{"axes", {2, 1}}, {"normalize", {1}}}));
  gradcheck([&](const std::vector<Tensor>& t) { return run1(*dn3, {t[0], t[1]}); }, {rand({2, 2, 3}), rand({2, 3, 2}, -1, 1, 4)});
}

// ---------------------------------------------------------------------------------- external

TEST(LayersExternal, CallsTheFunctionAndChecksItsOutputs) {
  int calls = 0;
  bool seen_training = false;
  auto ext = nn::make_external_layer(
      "lambda",
      [&](const std::vector<Tensor>& in, bool training) {
        ++calls;
        seen_training = training;
        return std::vector<Tensor>{ops::multiply(in[0], in[1]), ops::sum(in[0], {1}, true)};
      },
      {{-1, 3}, {-1, 1}}, 2);
  EXPECT_EQ(ext->num_inputs(), 2);
  auto shapes = ext->output_shapes({{-1, 3}, {-1, 3}});
  ASSERT_EQ(shapes.size(), 2u);
  EXPECT_EQ(shapes[1], (PartialShape{-1, 1}));
  Tensor a = make({2, 3}, {1, 2, 3, 4, 5, 6}), b = make({2, 3}, {2, 2, 2, 1, 0, -1});
  auto out = run(*ext, {a, b}, {}, true);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(seen_training);
  expect_values(out[0], {2, 4, 6, 4, 0, -6}, 0);
  expect_values(out[1], {6, 15}, 0);
  gradcheck([&](const std::vector<Tensor>& v) { return run(*ext, {v[0], v[1]})[0]; }, {rand({2, 3}), rand({2, 3})});
  expect_error<ValueError>([&] { run(*ext, {a}); }, "expects 2 input(s)");

  // An empty declaration means "shaped like the inputs".
  auto same = nn::make_external_layer("act", [](const std::vector<Tensor>& in, bool) { return in; }, {}, 1);
  expect_shape(same->output_shapes({{-1, 7}}), {-1, 7});
  auto wrong = nn::make_external_layer(
      "bad", [](const std::vector<Tensor>& in, bool) { return std::vector<Tensor>{ops::sum(in[0], {1})}; }, {{-1, 3}}, 1);
  expect_error<ShapeError>([&] { run(*wrong, {a}); }, "Layer \"bad\" (Lambda): output 0 has shape (2,), but its output "
                                                      "shape was declared as (None, 3)");
  auto two = nn::make_external_layer("two", [](const std::vector<Tensor>& in, bool) { return in; }, {{-1, 3}, {-1, 3}}, 1);
  expect_error<ValueError>([&] { run(*two, {a}); }, "returned 1 output(s), but 2 were declared");
  // A failing function's exception passes through untouched.
  auto throws = nn::make_external_layer(
      "boom", [](const std::vector<Tensor>&, bool) -> std::vector<Tensor> { throw std::runtime_error("boom"); }, {}, 1);
  expect_error<std::runtime_error>([&] { run(*throws, {a}); }, "boom");
}

}  // namespace
