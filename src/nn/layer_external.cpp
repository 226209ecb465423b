// A layer whose forward is a function supplied from outside the engine (through the glue: an R
// function for layer_lambda or `activation = <R function>`). The engine cannot look inside, so the
// caller declares the output shapes; the results are checked against them to fail early, naming
// the layer, rather than deep inside a later op.
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "nn/layer.h"
#include "nn/layer_impl.h"

namespace rk::nn {

namespace {

class ExternalLayer : public Layer {
 public:
  ExternalLayer(const std::string& name, ExternalFn fn, std::vector<PartialShape> shapes, int num_inputs)
      : Layer("Lambda", name, Attrs()), fn_(std::move(fn)), shapes_(std::move(shapes)), num_inputs_(num_inputs) {
    if (!fn_) throw ValueError("external layer \"" + name + "\": no function given");
    if (num_inputs_ == 0 || num_inputs_ < -1)
      throw ValueError("external layer \"" + name + "\": num_inputs must be >= 1 or -1, got " +
                       std::to_string(num_inputs_));
  }

  int num_inputs() const override { return num_inputs_; }

  // An empty declaration means "outputs shaped like the inputs" (e.g. an R activation function).
  std::vector<PartialShape> output_shapes(const std::vector<PartialShape>& in) const override {
    detail::check_num_inputs(*this, in.size());
    return shapes_.empty() ? in : shapes_;
  }

  std::vector<Tensor> forward(const std::vector<Tensor>& in, const std::vector<Tensor>&, Context& ctx) const override {
    detail::check_num_inputs(*this, in.size());
    std::vector<Tensor> out = fn_(in, ctx.training);
    std::vector<PartialShape> in_shapes;
    if (shapes_.empty())
      for (const auto& t : in) in_shapes.push_back(t.shape().dims());
    const std::vector<PartialShape>& want = shapes_.empty() ? in_shapes : shapes_;
    if (out.size() != want.size())
      throw ValueError("Layer \"" + name() + "\" (Lambda): the function returned " + std::to_string(out.size()) +
                       " output(s), but " + std::to_string(want.size()) + " were declared");
    for (size_t k = 0; k < out.size(); ++k) {
      if (!out[k].defined())
        throw ValueError("Layer \"" + name() + "\" (Lambda): output " + std::to_string(k) + " is undefined");
      const PartialShape& w = want[k];
      bool ok = static_cast<size_t>(out[k].rank()) == w.size();
      // The batch axis is not compared: a declared batch size need not match the last, short batch.
      for (size_t i = 1; ok && i < w.size(); ++i) ok = w[i] < 0 || w[i] == out[k].size(static_cast<int>(i));
      if (!ok)
        throw ShapeError("Layer \"" + name() + "\" (Lambda): output " + std::to_string(k) + " has shape " +
                         out[k].shape().str() + ", but its output shape was declared as " + shape_str(w));
    }
    return out;
  }

 private:
  ExternalFn fn_;
  std::vector<PartialShape> shapes_;
  int num_inputs_;
};

}  // namespace

std::unique_ptr<Layer> make_external_layer(const std::string& name, ExternalFn fn,
                                           std::vector<PartialShape> output_shapes, int num_inputs) {
  return std::unique_ptr<Layer>(new ExternalLayer(name, std::move(fn), std::move(output_shapes), num_inputs));
}

}  // namespace rk::nn
