// Eager reverse-mode autograd. Each recorded op adds a Node holding a backward closure
// with only what that backward needs; backward() runs nodes in topological order
// (iteratively, so deep graphs cannot overflow the stack) and then releases them.
//
// Rule for op authors: a backward closure must never capture an op's own output handle
// (that would form a cycle output -> node -> closure -> output); capture `out.detach()`.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rk::autograd {

/// Computes the gradients w.r.t. an op's inputs from the gradient w.r.t. its output.
/// Returns one tensor per input; an undefined tensor means "no gradient" (treated as zero).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_out)>;

/// One recorded op (or, with `leaf` set, the sink that accumulates a leaf's .grad).
struct Node {
  std::string name;                         ///< op name, for error messages
  std::vector<std::shared_ptr<Node>> next;  ///< producer per input; nullptr = input needs no grad
  BackwardFn fn;                            ///< empty once released
  std::weak_ptr<TensorImpl> leaf;           ///< set for accumulator nodes only
  Shape out_shape;                          ///< shape of the output gradient this node expects
  bool released = false;
  Node() = default;
  /// Tears the chain of producers down iteratively, so dropping a very deep graph cannot overflow the stack.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
};

/// Autograd state attached to a TensorImpl.
struct AutogradMeta {
  Tensor grad;                           ///< accumulated gradient (leaves)
  std::shared_ptr<Node> grad_fn;         ///< producer (non-leaves)
  std::shared_ptr<Node> accumulator;     ///< sink shared by every use of a leaf
};

/// Whether ops record history on this thread.
bool grad_enabled();
/// Enables or disables recording on this thread.
void set_grad_enabled(bool on);

/// Disables recording for its lifetime (inference, optimizer updates, backward itself).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

/// True if recording is on and any defined input requires grad.
bool needs_grad(const std::vector<Tensor>& inputs);

/// Makes `out` the result of a recorded op over `inputs` whose backward is `fn`.
/// Call only when needs_grad(inputs) is true.
void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn);

/// Backpropagates from `root`. `grad` defaults to ones for a one-element root (else required).
/// Leaf gradients accumulate into their .grad; the graph is released unless `retain_graph`.
/// Throws AutogradError if root needs no grad or the graph was already released.
void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false);

/// The accumulated gradient of a leaf (undefined if none yet).
Tensor grad(const Tensor& t);
/// Sets (or, with an undefined tensor, clears) a leaf's accumulated gradient.
void set_grad(const Tensor& t, const Tensor& g);
/// The node that produced `t`, or nullptr for leaves and untracked tensors.
std::shared_ptr<Node> grad_fn(const Tensor& t);

}  // namespace rk::autograd
