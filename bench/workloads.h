// The benchmark models of bench/gpu_bench.cpp, built through the engine's C++ API (layers from Attrs,
// a Graph, a Trainer), shared with the engine's end-to-end CPU-vs-CUDA training test
// (tests/engine/test_cuda_training.cpp) so that the workload the GPU bench times is the one whose
// results are checked against the CPU. bench/torch_gpu.py defines the same three models in PyTorch.
//
//   mlp      Dense(256, relu) - Dense(128, relu) - Dense(10) on 784 inputs (Fashion-MNIST MLP of
//            bench/mlp.R): 235,146 parameters.
//   convnet  the Keras mnist_convnet of bench/cnn.R on 28x28x1: Conv2D(32, 3x3, relu) - MaxPool(2) -
//            Conv2D(64, 3x3, relu) - MaxPool(2) - Flatten - Dropout(0.5) - Dense(10): 34,826 parameters.
//   resnet   ResNet-style CNN on 32x32x3 (CIFAR-sized; He et al.'s ResNet-14 layout):
//            Conv2D(16, 3x3, same, no bias) - BN - relu, then 3 stages of 2 basic blocks with 16, 32,
//            64 filters; the first block of stages 2 and 3 has stride 2. A basic block is
//            Conv2D(f, 3x3, stride s, same, no bias) - BN - relu - Conv2D(f, 3x3, same, no bias) - BN,
//            plus the shortcut (identity, or Conv2D(f, 1x1, stride s, no bias) - BN where the shape
//            changes), Add, relu. Then GlobalAveragePooling2D - Dense(10): 176,378 parameters
//            (175,258 trainable; BN moving statistics 1,120). BatchNormalization: momentum 0.99,
//            epsilon 1e-3 (Keras defaults; torch momentum 0.01, eps 1e-3).
//            "same" with stride 2 pads (0, 1) as TF does; torch's padding=1 pads (1, 1): same
//            output shape and work, different numbers.
// Initialisers are Keras's defaults: glorot_uniform kernels, zero biases and BN beta / moving mean,
// ones for BN gamma / moving variance. Every model ends in logits: the loss is sparse categorical
// cross-entropy from logits, labels int32.
#pragma once
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/graph.h"
#include "nn/layer.h"
#include "nn/trainer.h"
#include "ops/ops.h"

namespace rk::bench {

/// Builds a Graph layer by layer with shape inference; weights are drawn on the host from `seed`
/// (so two builds with one seed start from identical weights on any device) and placed on `device`.
class GraphBuilder {
 public:
  GraphBuilder(Device device, uint32_t seed) : device_(device), rng_(seed), g_(std::make_shared<nn::Graph>()) {}

  /// Declares a model input of shape `shape` (batch axis -1); returns its value id.
  int input(const nn::PartialShape& shape) {
    const int id = new_value(shape);
    g_->input_ids.push_back(id);
    return id;
  }

  /// Applies a new layer of Keras class `kind` with settings `attrs` to values `ins`; returns the
  /// output value id. Weights follow the layer's weight_specs, initialised as Keras does by default.
  int add(const std::string& kind, const nn::Attrs& attrs, const std::vector<int>& ins) {
    auto layer = std::shared_ptr<const nn::Layer>(nn::make_layer(kind, kind + "_" + std::to_string(g_->nodes.size()), attrs));
    std::vector<nn::PartialShape> in_shapes;
    for (int i : ins) in_shapes.push_back(shapes_[static_cast<size_t>(i)]);
    const std::vector<nn::PartialShape> outs = layer->output_shapes(in_shapes);
    nn::GraphNode node{layer, ins, {}, {}};
    for (const nn::WeightSpec& w : layer->weight_specs(in_shapes)) {
      node.weights.push_back(static_cast<int>(g_->weights.size()));
      g_->weights.push_back(init_weight(w));
      g_->trainable.push_back(w.trainable);
    }
    for (const auto& s : outs) node.outputs.push_back(new_value(s));
    g_->nodes.push_back(std::move(node));
    return g_->nodes.back().outputs[0];
  }

  /// The finished graph with output `out`.
  std::shared_ptr<nn::Graph> finish(int out) {
    g_->output_ids = {out};
    g_->num_values = static_cast<int>(shapes_.size());
    g_->validate();
    return g_;
  }

 private:
  int new_value(const nn::PartialShape& s) {
    shapes_.push_back(s);
    return static_cast<int>(shapes_.size()) - 1;
  }

  Tensor init_weight(const nn::WeightSpec& w) {
    Tensor t = Tensor::empty(Shape(w.shape), DType::Float32, cpu_device());
    float* p = t.data<float>();
    const int64_t n = t.numel();
    if (w.name == "kernel") {
      // glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)); a kernel [*window, in, out]
      // has fan_in = prod(window) * in, fan_out = prod(window) * out.
      const size_t r = w.shape.size();
      double receptive = 1;
      for (size_t i = 0; i + 2 < r; ++i) receptive *= static_cast<double>(w.shape[i]);
      const double limit = std::sqrt(6.0 / (receptive * static_cast<double>(w.shape[r - 2] + w.shape[r - 1])));
      std::uniform_real_distribution<float> d(static_cast<float>(-limit), static_cast<float>(limit));
      for (int64_t i = 0; i < n; ++i) p[i] = d(rng_);
    } else {
      const bool one = w.name == "gamma" || w.name == "moving_variance";
      if (!one && w.name != "bias" && w.name != "beta" && w.name != "moving_mean")
        throw std::runtime_error("workloads.h: no initialiser for weight \"" + w.name + "\"");
      for (int64_t i = 0; i < n; ++i) p[i] = one ? 1.0f : 0.0f;
    }
    return device_ == cpu_device() ? t : ops::to_device(t, device_);
  }

  Device device_;
  std::mt19937 rng_;
  std::shared_ptr<nn::Graph> g_;
  std::vector<nn::PartialShape> shapes_;
};

/// Attrs from numeric and string settings.
inline nn::Attrs attrs(std::initializer_list<std::pair<const char*, std::vector<double>>> nums,
                       std::initializer_list<std::pair<const char*, const char*>> strs = {}) {
  nn::Attrs a;
  for (const auto& [k, v] : nums) a.set(k, v);
  for (const auto& [k, v] : strs) a.set(k, std::string(v));
  return a;
}

/// The MLP 784-256-128-10 (logits).
inline std::shared_ptr<nn::Graph> build_mlp(Device device, uint32_t seed) {
  GraphBuilder b(device, seed);
  int v = b.input({-1, 784});
  v = b.add("Dense", attrs({{"units", {256}}}, {{"activation", "relu"}}), {v});
  v = b.add("Dense", attrs({{"units", {128}}}, {{"activation", "relu"}}), {v});
  v = b.add("Dense", attrs({{"units", {10}}}), {v});
  return b.finish(v);
}

/// The Keras mnist_convnet on 28x28x1 (logits), with its Dropout(0.5).
inline std::shared_ptr<nn::Graph> build_convnet(Device device, uint32_t seed) {
  GraphBuilder b(device, seed);
  int v = b.input({-1, 28, 28, 1});
  v = b.add("Conv2D", attrs({{"filters", {32}}, {"kernel_size", {3, 3}}}, {{"activation", "relu"}}), {v});
  v = b.add("MaxPooling2D", attrs({{"pool_size", {2, 2}}}), {v});
  v = b.add("Conv2D", attrs({{"filters", {64}}, {"kernel_size", {3, 3}}}, {{"activation", "relu"}}), {v});
  v = b.add("MaxPooling2D", attrs({{"pool_size", {2, 2}}}), {v});
  v = b.add("Flatten", attrs({}), {v});
  v = b.add("Dropout", attrs({{"rate", {0.5}}}), {v});
  v = b.add("Dense", attrs({{"units", {10}}}), {v});
  return b.finish(v);
}

/// The ResNet-style CNN on 32x32x3 described at the top of this file (logits).
inline std::shared_ptr<nn::Graph> build_resnet(Device device, uint32_t seed) {
  GraphBuilder b(device, seed);
  auto conv = [&](int v, double f, double k, double s) {
    return b.add("Conv2D", attrs({{"filters", {f}}, {"kernel_size", {k, k}}, {"strides", {s, s}}, {"use_bias", {0}}},
                                 {{"padding", "same"}}),
                 {v});
  };
  auto bn = [&](int v) { return b.add("BatchNormalization", attrs({{"momentum", {0.99}}, {"epsilon", {1e-3}}}), {v}); };
  auto relu = [&](int v) { return b.add("Activation", attrs({}, {{"activation", "relu"}}), {v}); };
  int v = relu(bn(conv(b.input({-1, 32, 32, 3}), 16, 3, 1)));
  double in_f = 16;
  for (double f : {16.0, 32.0, 64.0}) {
    for (int blk = 0; blk < 2; ++blk) {
      const double s = (blk == 0 && f != 16.0) ? 2 : 1;
      int y = bn(conv(relu(bn(conv(v, f, 3, s))), f, 3, 1));
      int sc = (s != 1 || f != in_f) ? bn(conv(v, f, 1, s)) : v;
      v = relu(b.add("Add", attrs({}), {y, sc}));
      in_f = f;
    }
  }
  v = b.add("GlobalAveragePooling2D", attrs({}), {v});
  v = b.add("Dense", attrs({{"units", {10}}}), {v});
  return b.finish(v);
}

/// The model called `name` ("mlp", "convnet", "resnet"); std::invalid_argument otherwise.
inline std::shared_ptr<nn::Graph> build_model(const std::string& name, Device device, uint32_t seed) {
  if (name == "mlp") return build_mlp(device, seed);
  if (name == "convnet") return build_convnet(device, seed);
  if (name == "resnet") return build_resnet(device, seed);
  throw std::invalid_argument("unknown model \"" + name + "\" (mlp, convnet, resnet)");
}

/// Per-sample input shape of model `name` (without the batch axis).
inline std::vector<int64_t> input_shape(const std::string& name) {
  if (name == "mlp") return {784};
  if (name == "convnet") return {28, 28, 1};
  return {32, 32, 3};
}

/// Total and trainable parameter counts of a graph's weights.
inline std::pair<int64_t, int64_t> count_params(const nn::Graph& g) {
  int64_t total = 0, trainable = 0;
  for (size_t i = 0; i < g.weights.size(); ++i) {
    total += g.weights[i].numel();
    if (g.trainable[i]) trainable += g.weights[i].numel();
  }
  return {total, trainable};
}

/// A Trainer of `g`: sparse categorical cross-entropy from logits, no metrics, optimizer `kind`
/// ("adam": Adam lr 1e-3, epsilon 1e-7 as bench/mlp.R; "sgd": plain SGD with learning rate `lr`).
inline nn::Trainer make_trainer(std::shared_ptr<nn::Graph> g, const std::string& kind = "adam", double lr = 1e-3) {
  nn::Attrs oa = attrs({{"learning_rate", {lr}}});
  if (kind == "adam") oa.set("epsilon", std::vector<double>{1e-7});
  auto opt = std::shared_ptr<optim::Optimizer>(optim::make_optimizer(kind, oa));
  nn::LossSpec loss{"sparse_categorical_crossentropy", attrs({{"from_logits", {1}}}), 1.0, {}};
  return nn::Trainer(std::move(g), {loss}, {}, opt, {}, {});
}

/// Synthetic data on `device`: n inputs of `shape` drawn U[0, 1) and int32 labels in [0, 10), from `seed`.
struct Data {
  Tensor x, y;
};
inline Data synthetic_data(int64_t n, const std::vector<int64_t>& shape, Device device, uint32_t seed) {
  std::vector<int64_t> dims{n};
  dims.insert(dims.end(), shape.begin(), shape.end());
  Tensor x = Tensor::empty(Shape(dims), DType::Float32, cpu_device());
  Tensor y = Tensor::empty(Shape({n}), DType::Int32, cpu_device());
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  float* px = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) px[i] = u(rng);
  int32_t* py = y.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) py[i] = static_cast<int32_t>(rng() % 10u);
  if (device == cpu_device()) return {x, y};
  return {ops::to_device(x, device), ops::to_device(y, device)};
}

}  // namespace rk::bench
