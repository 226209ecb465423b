// Merge layers (Keras 3 semantics): Add, Subtract, Multiply, Average, Maximum, Minimum,
// Concatenate and Dot.
//
// Elementwise merges broadcast the NON-batch axes right-aligned, as Keras's Merge does (it
// inserts size-1 axes after the batch axis of lower-rank inputs); the batch sizes must agree.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "nn/layer.h"
#include "nn/layer_impl.h"
#include "ops/ops.h"

namespace rk::nn {

namespace {

using detail::check_num_inputs;
using detail::layer_fail;
using detail::shapes_str;

enum class MergeOp { Add, Subtract, Multiply, Average, Maximum, Minimum };

const char* merge_kind(MergeOp op) {
  switch (op) {
    case MergeOp::Add: return "Add";
    case MergeOp::Subtract: return "Subtract";
    case MergeOp::Multiply: return "Multiply";
    case MergeOp::Average: return "Average";
    case MergeOp::Maximum: return "Maximum";
    case MergeOp::Minimum: return "Minimum";
  }
  return "Merge";
}

// The batch size shared by `in` (-1 if none is known); ShapeError if two known ones differ.
int64_t common_batch(const Layer& layer, const std::vector<PartialShape>& in) {
  int64_t b = -1;
  for (const auto& s : in) {
    if (s.empty()) detail::ndim_fail(layer, static_cast<int>(&s - in.data()), "min_ndim=1", s);
    if (s[0] >= 0) {
      if (b >= 0 && b != s[0])
        layer_fail(layer, "Cannot merge tensors with different batch sizes. Received tensors with shapes " +
                              shapes_str(in));
      b = s[0];
    }
  }
  return b;
}

class ElementwiseMerge : public Layer {
 public:
  ElementwiseMerge(MergeOp op, const std::string& name, const Attrs& a) : Layer(merge_kind(op), name, a), op_(op) {}

  int num_inputs() const override { return op_ == MergeOp::Subtract ? 2 : -1; }

  std::vector<PartialShape> output_shapes(const std::vector<PartialShape>& in) const override {
    check_num_inputs(*this, in.size());
    const int64_t batch = common_batch(*this, in);
    PartialShape out(in[0].begin() + 1, in[0].end());
    for (size_t k = 1; k < in.size(); ++k) {
      PartialShape s(in[k].begin() + 1, in[k].end());
      // Right-aligned broadcasting of the non-batch axes (Keras _compute_elemwise_op_output_shape).
      PartialShape& longer = out.size() >= s.size() ? out : s;
      const PartialShape& shorter = out.size() >= s.size() ? s : out;
      PartialShape r = longer;
      const size_t off = longer.size() - shorter.size();
      for (size_t i = 0; i < shorter.size(); ++i) {
        int64_t x = longer[off + i], y = shorter[i];
        if (x < 0 || y < 0) r[off + i] = -1;
        else if (x == 1) r[off + i] = y;
        else if (y == 1) r[off + i] = x;
        else if (x != y)
          layer_fail(*this, "Inputs have incompatible shapes. Received shapes " + shapes_str(in));
      }
      out = r;
    }
    out.insert(out.begin(), batch);
    return {out};
  }

  std::vector<Tensor> forward(const std::vector<Tensor>& in, const std::vector<Tensor>&, Context&) const override {
    check_num_inputs(*this, in.size());
    int max_rank = 0;
    for (size_t k = 0; k < in.size(); ++k) {
      if (in[k].rank() < 1) detail::ndim_fail(*this, static_cast<int>(k), "min_ndim=1", in[k].shape().dims());
      max_rank = std::max(max_rank, in[k].rank());
    }
    auto aligned = [&](size_t k) {
      Tensor x = in[k];
      while (x.rank() < max_rank) x = ops::expand_dims(x, 1);
      return x;
    };
    Tensor acc = aligned(0);
    for (size_t k = 1; k < in.size(); ++k) {
      Tensor x = aligned(k);
      switch (op_) {
        case MergeOp::Add:
        case MergeOp::Average: acc = ops::add(acc, x); break;
        case MergeOp::Subtract: acc = ops::subtract(acc, x); break;
        case MergeOp::Multiply: acc = ops::multiply(acc, x); break;
        case MergeOp::Maximum: acc = ops::maximum(acc, x); break;
        case MergeOp::Minimum: acc = ops::minimum(acc, x); break;
      }
    }
    if (op_ == MergeOp::Average) acc = ops::divide(acc, detail::scalar_like(acc, static_cast<double>(in.size())));
    return {acc};
  }

 private:
  MergeOp op_;
};

// ------------------------------------------------------------------------------ Concatenate

class Concatenate : public Layer {
 public:
  Concatenate(const std::string& name, const Attrs& a)
      : Layer("Concatenate", name, a), axis_(static_cast<int>(a.integer("axis", -1))) {}

  int num_inputs() const override { return -1; }

  std::vector<PartialShape> output_shapes(const std::vector<PartialShape>& in) const override {
    check_num_inputs(*this, in.size());
    const size_t rank = in[0].size();
    auto mismatch = [&]() {
      layer_fail(*this,
                 "A `Concatenate` layer requires inputs with matching shapes except for the concatenation axis. "
                 "Received: input_shape=" + shapes_str(in));
    };
    for (const auto& s : in)
      if (s.size() != rank) mismatch();
    const int ax = axis_ < 0 ? axis_ + static_cast<int>(rank) : axis_;
    if (ax < 0 || ax >= static_cast<int>(rank))
      layer_fail(*this, "axis " + std::to_string(axis_) + " is out of range for inputs of rank " +
                            std::to_string(rank) + " (shapes " + shapes_str(in) + ")");
    PartialShape out = in[0];
    for (size_t k = 1; k < in.size(); ++k) {
      for (size_t i = 0; i < rank; ++i) {
        if (static_cast<int>(i) == ax) continue;
        int64_t x = out[i], y = in[k][i];
        if (x >= 0 && y >= 0 && x != y) mismatch();
        if (x < 0) out[i] = y;
      }
    }
    int64_t total = 0;
    for (const auto& s : in) {
      if (s[static_cast<size_t>(ax)] < 0) {
        total = -1;
        break;
      }
      total += s[static_cast<size_t>(ax)];
    }
    out[static_cast<size_t>(ax)] = total;
    return {out};
  }

  std::vector<Tensor> forward(const std::vector<Tensor>& in, const std::vector<Tensor>&, Context&) const override {
    check_num_inputs(*this, in.size());
    std::vector<PartialShape> shapes;
    for (const auto& t : in) shapes.push_back(t.shape().dims());
    output_shapes(shapes);  // Keras's message on a mismatch, before the op's own
    const int rank = in[0].rank();
    return {ops::concatenate(in, axis_ < 0 ? axis_ + rank : axis_)};
  }

 private:
  int axis_;
};

// -------------------------------------------------------------------------------------- Dot

class Dot : public Layer {
 public:
  Dot(const std::string& name, const Attrs& a) : Layer("Dot", name, a) {
    std::vector<int64_t> ax = a.ints("axes");
    if (ax.size() == 1) {
      axes_ = {ax[0], ax[0]};
    } else if (ax.size() == 2) {
      axes_ = ax;
    } else {
      throw ValueError("Invalid format for argument `axes`: it should be an integer or contain two elements. "
                       "Received: axes=" + shape_str(ax));
    }
    normalize_ = a.flag("normalize", false);
    epsilon_ = a.num("epsilon", 1e-7);
  }

  int num_inputs() const override { return 2; }

  std::vector<PartialShape> output_shapes(const std::vector<PartialShape>& in) const override {
    check_num_inputs(*this, in.size());
    const PartialShape &s1 = in[0], &s2 = in[1];
    auto [a0, a1] = resolve(s1.size(), s2.size(), in);
    if (s1[0] >= 0 && s2[0] >= 0 && s1[0] != s2[0])
      layer_fail(*this, "Cannot do batch_dot on inputs with different batch sizes. Received inputs with shapes " +
                            shape_str(s1) + " and " + shape_str(s2));
    if (s1[a0] >= 0 && s2[a1] >= 0 && s1[a0] != s2[a1])
      layer_fail(*this, "Incompatible input shapes: axis values " + std::to_string(s1[a0]) + " (at axis " +
                            std::to_string(a0) + ") != " + std::to_string(s2[a1]) + " (at axis " + std::to_string(a1) +
                            "). Full input shapes: " + shape_str(s1) + ", " + shape_str(s2));
    PartialShape out;
    for (size_t i = 0; i < s1.size(); ++i)
      if (static_cast<int>(i) != a0) out.push_back(s1[i]);
    for (size_t i = 1; i < s2.size(); ++i)
      if (static_cast<int>(i) != a1) out.push_back(s2[i]);
    if (out.size() == 1) out.push_back(1);
    if (out[0] < 0) out[0] = s2[0];
    return {out};
  }

  std::vector<Tensor> forward(const std::vector<Tensor>& in, const std::vector<Tensor>&, Context&) const override {
    check_num_inputs(*this, in.size());
    Tensor x = in[0], y = in[1];
    std::vector<PartialShape> shapes{x.shape().dims(), y.shape().dims()};
    std::vector<int64_t> out_shape = output_shapes(shapes)[0];
    auto [a0, a1] = resolve(x.rank(), y.rank(), shapes);
    if (normalize_) {
      x = l2_normalize(x, a0);
      y = l2_normalize(y, a1);
    }
    // Batched matmul: x -> [b, Mx, K] with the dot axis last, y -> [b, K, My] with it second.
    const int64_t b = x.size(0), k = x.size(a0);
    std::vector<int> px{0}, py{0, a1};
    for (int i = 1; i < x.rank(); ++i)
      if (i != a0) px.push_back(i);
    px.push_back(a0);
    for (int i = 1; i < y.rank(); ++i)
      if (i != a1) py.push_back(i);
    x = ops::reshape(ops::transpose(x, px), {b, -1, k});
    y = ops::reshape(ops::transpose(y, py), {b, k, -1});
    Tensor r = ops::matmul(x, y);
    return {ops::reshape(r, out_shape)};
  }

 private:
  // Keras's axis numbering counts the batch axis; negative axes count from each input's end.
  std::pair<int, int> resolve(size_t r1, size_t r2, const std::vector<PartialShape>& in) const {
    if (r1 < 2 || r2 < 2)
      layer_fail(*this, "Cannot do batch_dot on inputs with rank < 2. Received inputs with shapes " +
                            shape_str(in[0]) + " and " + shape_str(in[1]));
    auto norm = [&](int64_t a, size_t r) {
      int64_t v = a < 0 ? a + static_cast<int64_t>(r) : a;
      if (v < 0 || v >= static_cast<int64_t>(r))
        layer_fail(*this, "axes " + shape_str(axes_) + " are out of range for inputs with shapes " +
                              shape_str(in[0]) + " and " + shape_str(in[1]));
      if (v == 0)
        layer_fail(*this, "Cannot perform batch_dot over axis 0 (the batch axis); received axes " +
                              shape_str(axes_));
      return static_cast<int>(v);
    };
    return {norm(axes_[0], r1), norm(axes_[1], r2)};
  }

  // x / max(||x||_2, epsilon) along `axis` (Keras 3 ops.normalize: x * min(rsqrt(sum x^2), 1/eps)).
  // Written as rsqrt(max(sum x^2, eps^2)) so a zero vector gets a zero (not NaN) gradient.
  Tensor l2_normalize(const Tensor& x, int axis) const {
    Tensor ss = ops::sum(ops::square(x), {axis}, true);
    Tensor inv = ops::reciprocal(ops::sqrt(ops::maximum(ss, detail::scalar_like(x, epsilon_ * epsilon_))));
    return ops::multiply(x, inv);
  }

  std::vector<int64_t> axes_;
  bool normalize_;
  double epsilon_;
};

detail::Factory merge_factory(MergeOp op) {
  return [op](const std::string& name, const Attrs& a) {
    return std::unique_ptr<Layer>(new ElementwiseMerge(op, name, a));
  };
}

}  // namespace

void detail::register_merge_layers(Registry& r) {
  for (MergeOp op : {MergeOp::Add, MergeOp::Subtract, MergeOp::Multiply, MergeOp::Average, MergeOp::Maximum,
                     MergeOp::Minimum})
    r[merge_kind(op)] = merge_factory(op);
  r["Concatenate"] = [](const std::string& name, const Attrs& a) {
    return std::unique_ptr<Layer>(new Concatenate(name, a));
  };
  r["Dot"] = [](const std::string& name, const Attrs& a) { return std::unique_ptr<Layer>(new Dot(name, a)); };
}

}  // namespace rk::nn
