// Engine Graph: execution of layer nodes in order (a transcribed conformance fixture, a shared
// layer used twice feeding a merge, an external layer), gradients through the graph into shared
// weights, validate() errors and error naming.
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "nn/graph.h"
#include "nn/layer.h"
#include "test_util.h"

namespace {

using namespace rk;
using nn::Attrs;
using rk::testing::expect_values, rk::testing::gradcheck, rk::testing::make, rk::testing::rand, rk::testing::values;

// Transcribed from /work/shared/conformance/fixtures/<case>/case.json (row-major data).
// ---- 10_merge_add: two inputs [6],[6] -> Dense(4) each -> add
// input input_a shape [3, 6]
const std::vector<int64_t> k10_merge_add_input0_shape{3, 6};
const std::vector<double> k10_merge_add_input0{0.8762922, 0.51938015, 0.3609279, -0.6092773, 0.2932433, 0.39211413, -0.46393043, 0.92474777, 0.17091566, 0.67128885, -0.09062204, -0.012502372, -0.18798168, -0.9216142, 0.6963083, -0.5375883, -0.57178533, 0.8857393};
// input input_b shape [3, 6]
const std::vector<int64_t> k10_merge_add_input1_shape{3, 6};
const std::vector<double> k10_merge_add_input1{-0.95945716, -0.008814691, -0.03548501, -0.2748392, 0.8577634, -0.6310939, 0.88710696, -0.86064017, -0.6688436, -0.89405227, -0.5861429, -0.17321365, -0.57822293, 0.4118919, -0.25696594, 0.034729805, -0.6237114, 0.40163586};
// weight dense_a/kernel shape [6, 4]
const std::vector<int64_t> k10_merge_add_weight0_shape{6, 4};
const std::vector<double> k10_merge_add_weight0{0.23939157, 0.4716805, -0.17313823, -0.47241968, 0.44413438, 0.17015328, -0.14211026, -0.46873093, 0.42818943, 0.24033855, -0.17372884, -0.37425807, 0.05325136, 0.29011288, -0.49544057, 0.023589363, 0.053108227, -0.24956673, -0.16253726, -0.12125347, 0.24518219, -0.14142911, 0.27143306, 0.31043875};
// weight dense_a/bias shape [4]
const std::vector<int64_t> k10_merge_add_weight1_shape{4};
const std::vector<double> k10_merge_add_weight1{-0.015117858, -0.3283388, -0.45029968, -0.4769223};
// weight dense_b/kernel shape [6, 4]
const std::vector<int64_t> k10_merge_add_weight2_shape{6, 4};
const std::vector<double> k10_merge_add_weight2{-0.48605356, 0.1380286, -0.276403, 0.13370515, -0.21664229, 0.025258802, -0.3625588, -0.016731422, 0.37442395, 0.12503736, 0.2733231, -0.19972828, 0.44330496, 0.38315797, -0.21686651, 0.4092254, -0.12572193, 0.077027194, -0.206495, 0.34963626, -0.25056648, -0.06760292, 0.41688257, -0.49452558};
// weight dense_b/bias shape [4]
const std::vector<int64_t> k10_merge_add_weight3_shape{4};
const std::vector<double> k10_merge_add_weight3{-0.31922957, -0.2923466, -0.035920154, 0.28176597};
// output merge shape [3, 4]
const std::vector<int64_t> k10_merge_add_output0_shape{3, 4};
const std::vector<double> k10_merge_add_output0{0.7233423, -0.4712997, -0.53574055, -0.5373889, -0.70804965, -0.78087735, -0.76151365, -0.66901827, -0.24357016, -1.0007759, 0.38497669, -0.038701147};


Tensor from(const std::vector<int64_t>& shape, const std::vector<double>& v) {
  return make(Shape(shape), v, DType::Float32);
}

std::shared_ptr<const nn::Layer> layer(const std::string& kind, const std::string& name, Attrs a = Attrs()) {
  return std::shared_ptr<const nn::Layer>(nn::make_layer(kind, name, a));
}

Attrs units(int n) {
  Attrs a;
  a.set("units", std::vector<double>{static_cast<double>(n)});
  return a;
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

// 10_merge_add: input_a -> dense_a, input_b -> dense_b, add. Values: 0 input_a, 1 input_b,
// 2 dense_a out, 3 dense_b out, 4 merge out.
nn::Graph merge_add_graph() {
  nn::Graph g;
  g.weights = {from(k10_merge_add_weight0_shape, k10_merge_add_weight0), from(k10_merge_add_weight1_shape, k10_merge_add_weight1),
               from(k10_merge_add_weight2_shape, k10_merge_add_weight2), from(k10_merge_add_weight3_shape, k10_merge_add_weight3)};
  g.trainable = {true, true, true, true};
  g.nodes = {{layer("Dense", "dense_a", units(4)), {0}, {0, 1}, {2}},
             {layer("Dense", "dense_b", units(4)), {1}, {2, 3}, {3}},
             {layer("Add", "merge"), {2, 3}, {}, {4}}};
  g.input_ids = {0, 1};
  g.output_ids = {4};
  g.num_values = 5;
  return g;
}

TEST(GraphForward, MergeAddFixture) {
  nn::Graph g = merge_add_graph();
  g.validate();
  nn::Context ctx;
  auto out = g.forward({from(k10_merge_add_input0_shape, k10_merge_add_input0),
                        from(k10_merge_add_input1_shape, k10_merge_add_input1)},
                       ctx);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape(), Shape(k10_merge_add_output0_shape));
  expect_values(out[0], k10_merge_add_output0, 1e-5, 1e-4);
  EXPECT_EQ(g.trainable_indices(), (std::vector<int>{0, 1, 2, 3}));
  g.trainable[1] = false;
  EXPECT_EQ(g.trainable_indices(), (std::vector<int>{0, 2, 3}));
}

// A shared Dense applied to two inputs (same weights), concatenated, then a Dense head with an
// intermediate value that is also a model output.
struct SharedModel {
  nn::Graph g;
  SharedModel(Tensor k, Tensor b, Tensor k2) {
    auto shared = layer("Dense", "shared", units(3));
    Attrs head = units(2);
    head.set("use_bias", std::vector<double>{0});
    head.set("activation", std::string("tanh"));
    g.weights = {k, b, k2};
    g.trainable = {true, true, true};
    // values: 0 x1, 1 x2, 2 shared(x1), 3 shared(x2), 4 concat, 5 head
    g.nodes = {{shared, {0}, {0, 1}, {2}},
               {shared, {1}, {0, 1}, {3}},
               {layer("Concatenate", "concat"), {2, 3}, {}, {4}},
               {layer("Dense", "head", head), {4}, {2}, {5}}};
    g.input_ids = {0, 1};
    g.output_ids = {5, 4};
    g.num_values = 6;
  }
};

TEST(GraphForward, SharedLayerTwiceAndMerge) {
  Tensor x1 = rand({2, 4}, -1, 1, 1), x2 = rand({2, 4}, -1, 1, 2);
  Tensor k = rand({4, 3}, -1, 1, 3), b = rand({3}, -1, 1, 4), k2 = rand({6, 2}, -1, 1, 5);
  SharedModel m(k, b, k2);
  m.g.validate();
  EXPECT_EQ(m.g.nodes[0].layer.get(), m.g.nodes[1].layer.get());
  nn::Context ctx;
  auto out = m.g.forward({x1, x2}, ctx);
  ASSERT_EQ(out.size(), 2u);
  // Reference by hand.
  auto dense = [](const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>* bias, int n,
                  int in, int u) {
    std::vector<double> y(static_cast<size_t>(n * u));
    for (int r = 0; r < n; ++r)
      for (int j = 0; j < u; ++j) {
        double s = bias ? (*bias)[static_cast<size_t>(j)] : 0;
        for (int i = 0; i < in; ++i) s += x[static_cast<size_t>(r * in + i)] * w[static_cast<size_t>(i * u + j)];
        y[static_cast<size_t>(r * u + j)] = s;
      }
    return y;
  };
  std::vector<double> bv = values(b);
  std::vector<double> h1 = dense(values(x1), values(k), &bv, 2, 4, 3), h2 = dense(values(x2), values(k), &bv, 2, 4, 3);
  std::vector<double> cat;
  for (int r = 0; r < 2; ++r) {
    cat.insert(cat.end(), h1.begin() + r * 3, h1.begin() + r * 3 + 3);
    cat.insert(cat.end(), h2.begin() + r * 3, h2.begin() + r * 3 + 3);
  }
  std::vector<double> head = dense(cat, values(k2), nullptr, 2, 6, 2);
  for (double& v : head) v = std::tanh(v);
  expect_values(out[0], head, 1e-12);
  expect_values(out[1], cat, 1e-12);

  // Gradients through both uses of the shared weights (accumulated) and into both inputs.
  gradcheck(
      [&](const std::vector<Tensor>& v) {
        SharedModel mm(v[2], v[3], v[4]);
        nn::Context c;
        return mm.g.forward({v[0], v[1]}, c)[0];
      },
      {x1, x2, k, b, k2});
}

TEST(GraphForward, ExternalLayerInsideTheGraph) {
  auto twice = std::shared_ptr<const nn::Layer>(nn::make_external_layer(
      "twice", [](const std::vector<Tensor>& in, bool) { return std::vector<Tensor>{ops::add(in[0], in[0])}; }, {}, 1));
  nn::Graph g;
  g.weights = {rand({3, 2}, -1, 1, 9)};
  g.trainable = {true};
  g.nodes = {{twice, {0}, {}, {1}}, {layer("Dense", "d", [] {
                                        Attrs a = units(2);
                                        a.set("use_bias", std::vector<double>{0});
                                        return a;
                                      }()),
                                      {1}, {0}, {2}}};
  g.input_ids = {0};
  g.output_ids = {2};
  g.num_values = 3;
  g.validate();
  Tensor x = rand({4, 3}, -1, 1, 10);
  gradcheck(
      [&](const std::vector<Tensor>& v) {
        nn::Graph gg = g;
        gg.weights = {v[1]};
        nn::Context c;
        return gg.forward({v[0]}, c)[0];
      },
      {x, g.weights[0]});
}

TEST(GraphForward, DropoutUsesTheContextGenerator) {
  Attrs r;
  r.set("rate", std::vector<double>{0.5});
  nn::Graph g;
  g.nodes = {{layer("Dropout", "dropout", r), {0}, {}, {1}}};
  g.input_ids = {0};
  g.output_ids = {1};
  g.num_values = 2;
  Tensor x = ops::ones(Shape({8, 8}), DType::Float64);
  auto draw = [&](uint64_t seed, bool training) {
    Generator gen(seed);
    nn::Context c;
    c.training = training;
    c.rng = &gen;
    return values(g.forward({x}, c)[0]);
  };
  EXPECT_EQ(draw(3, true), draw(3, true));
  EXPECT_NE(draw(3, true), draw(4, true));
  EXPECT_EQ(draw(3, false), values(x));
}

TEST(GraphValidate, RejectsInconsistentGraphs) {
  auto bad = [](std::function<void(nn::Graph&)> edit, const std::string& needle) {
    nn::Graph g = merge_add_graph();
    edit(g);
    expect_error<ValueError>([&] { g.validate(); }, needle);
  };
  bad([](nn::Graph& g) { g.trainable.pop_back(); }, "4 weights but 3 trainable flags");
  bad([](nn::Graph& g) { g.nodes[0].inputs = {7}; }, "node 0 (layer \"dense_a\") refers to value 7, outside [0, 5)");
  bad([](nn::Graph& g) { g.nodes[0].inputs = {3}; }, "reads value 3 before any node or input defines it");
  bad([](nn::Graph& g) { g.nodes[1].weights = {2, 9}; }, "uses weight 9, outside [0, 4)");
  bad([](nn::Graph& g) { g.nodes[2].inputs = {2}; }, "reads 1 values but its layer takes 2 or more");
  bad([](nn::Graph& g) { g.nodes[1].outputs = {2}; }, "writes value 2, already defined");
  bad([](nn::Graph& g) { g.output_ids = {5}; }, "an output id refers to value 5");
  bad([](nn::Graph& g) { g.input_ids = {0, 0}; }, "listed twice as an input");
  bad([](nn::Graph& g) { g.nodes[0].layer = nullptr; }, "node 0 has no layer");
  // Dropping the merge and returning dense_b's value is a valid (smaller) graph.
  nn::Graph ok = merge_add_graph();
  ok.nodes.pop_back();
  ok.num_values = 4;
  ok.output_ids = {3, 2};
  EXPECT_NO_THROW(ok.validate());
}

TEST(GraphForward, ErrorsNameTheLayer) {
  nn::Graph g = merge_add_graph();
  nn::Context ctx;
  expect_error<ValueError>([&] { g.forward({from({1, 6}, std::vector<double>(6, 0.0))}, ctx); },
                           "the model expects 2 input(s), but received 1");
  // Wrong feature count: the Dense message (already naming the layer) passes through unchanged.
  expect_error<ShapeError>(
      [&] { g.forward({from({1, 5}, std::vector<double>(5, 0.0)), from({1, 6}, std::vector<double>(6, 0.0))}, ctx); },
      "Input 0 of layer \"dense_a\" is incompatible with the layer: expected axis -1 of input shape to have value 6, but "
      "received input with shape (1, 5)");
  // A batch mismatch caught by the op gets the layer's name in front.
  expect_error<ShapeError>(
      [&] { g.forward({from({2, 6}, std::vector<double>(12, 0.0)), from({3, 6}, std::vector<double>(18, 0.0))}, ctx); },
      "Exception encountered when calling layer \"merge\" (Add): ");
}

}  // namespace
