#include "autograd/autograd.h"

#include <unordered_map>

#include "backend/backend.h"

namespace rk::autograd {

namespace {
thread_local bool g_grad_enabled = true;

AutogradMeta& meta(const Tensor& t) {
  auto& m = t.impl()->autograd;
  if (!m) m = std::make_shared<AutogradMeta>();
  return *m;
}

// The node an input's gradient flows to: its producer, or its leaf accumulator.
std::shared_ptr<Node> edge_for(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return nullptr;
  AutogradMeta& m = meta(t);
  if (m.grad_fn) return m.grad_fn;
  if (!m.accumulator) {
    m.accumulator = std::make_shared<Node>();
    m.accumulator->name = "accumulate_grad";
    m.accumulator->leaf = t.impl_ptr();
    m.accumulator->out_shape = t.shape();
  }
  return m.accumulator;
}

Tensor add_into(const Tensor& a, const Tensor& b) {
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  backend_of(a).binary(BinaryOp::Add, a, b, out);
  return out;
}

Tensor clone(const Tensor& t) {
  Tensor out = Tensor::empty(t.shape(), t.dtype(), t.device());
  backend_of(t).copy(t, out);
  return out;
}

Tensor ones_like(const Tensor& t) {
  Tensor out = Tensor::empty(t.shape(), t.dtype(), t.device());
  backend_of(t).fill(out, 1.0);
  return out;
}

void check_grad_shape(const Node& node, const Tensor& g) {
  if (g.shape() != node.out_shape)
    throw AutogradError("backward of '" + node.name + "' produced a gradient of shape " + g.shape().str() +
                        " for an input of shape " + node.out_shape.str());
}
}  // namespace

Node::~Node() {
  std::vector<std::shared_ptr<Node>> stack = std::move(next);
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    if (n && n.use_count() == 1) {
      for (auto& c : n->next) stack.push_back(std::move(c));
      n->next.clear();
      n->fn = nullptr;
    }
  }
}

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->fn = std::move(fn);
  node->out_shape = out.shape();
  node->next.reserve(inputs.size());
  for (const Tensor& t : inputs) node->next.push_back(edge_for(t));
  meta(out).grad_fn = std::move(node);
  out.impl()->requires_grad = true;
}

void backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  if (!root.defined() || !root.requires_grad())
    throw AutogradError("backward: the tensor does not require grad (no recorded history)");
  Tensor g0 = grad;
  if (!g0.defined()) {
    if (root.numel() != 1)
      throw AutogradError("backward: a gradient must be given for a non-scalar root of shape " + root.shape().str());
    g0 = ones_like(root);
  } else if (g0.shape() != root.shape()) {
    throw ShapeError("backward: gradient of shape " + g0.shape().str() + " given for a root of shape " +
                     root.shape().str());
  }
  std::shared_ptr<Node> root_node = edge_for(root);
  NoGradGuard no_grad;

  // Count, for every reachable node, how many reachable consumers feed it.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack{root_node.get()};
  deps[root_node.get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (auto& nx : n->next) {
      if (!nx) continue;
      auto it = deps.find(nx.get());
      if (it == deps.end()) {
        deps[nx.get()] = 1;
        stack.push_back(nx.get());
      } else {
        it->second++;
      }
    }
  }

  std::unordered_map<Node*, Tensor> buffer;
  buffer[root_node.get()] = g0;
  std::vector<std::shared_ptr<Node>> ready{root_node};
  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.back();
    ready.pop_back();
    auto found = buffer.find(node.get());
    Tensor g;
    if (found != buffer.end()) {
      g = found->second;
      buffer.erase(found);
    }
    if (!g.defined()) {
      // No gradient reached this node; still release its consumers' counts downstream.
      for (const auto& nx : node->next)
        if (nx && --deps[nx.get()] == 0) ready.push_back(nx);
      continue;
    }
    if (auto leaf = node->leaf.lock()) {
      check_grad_shape(*node, g);
      AutogradMeta& m = *leaf->autograd;
      // A fresh tensor either way, so .grad never aliases a gradient an op still holds.
      m.grad = m.grad.defined() ? add_into(m.grad, g) : clone(g);
      continue;
    }
    if (node->released || !node->fn)
      throw AutogradError("backward through '" + node->name +
                          "' a second time: its saved tensors were released (use retain_graph)");
    std::vector<Tensor> grads = node->fn(g);
    if (grads.size() != node->next.size())
      throw AutogradError("backward of '" + node->name + "' returned " + std::to_string(grads.size()) +
                          " gradients for " + std::to_string(node->next.size()) + " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const auto& nx = node->next[i];
      if (!nx) continue;
      if (grads[i].defined()) {
        check_grad_shape(*nx, grads[i]);
        auto it = buffer.find(nx.get());
        if (it == buffer.end()) buffer[nx.get()] = grads[i];
        else it->second = add_into(it->second, grads[i]);
      }
      if (--deps[nx.get()] == 0) ready.push_back(nx);
    }
    if (!retain_graph) {
      node->fn = nullptr;  // frees the saved tensors now, not when the graph is dropped
      node->released = true;
    }
  }
}

Tensor grad(const Tensor& t) {
  auto& m = t.impl()->autograd;
  return m ? m->grad : Tensor();
}

void set_grad(const Tensor& t, const Tensor& g) { meta(t).grad = g; }

std::shared_ptr<Node> grad_fn(const Tensor& t) {
  auto& m = t.impl()->autograd;
  return m ? m->grad_fn : nullptr;
}

}  // namespace rk::autograd
