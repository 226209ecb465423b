// Shape ops: reshape (a free view), transpose, expand/squeeze, concatenate/stack, split, slice.
#include <algorithm>
#include <numeric>
#include <string>

#include "ops/ops.h"

namespace rk::ops {

namespace {

std::string join(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

std::string join(const std::vector<int>& v) { return join(std::vector<int64_t>(v.begin(), v.end())); }

// The checked box [start, start + size) of `x`, recorded as `name`. Split uses it for each of its
// outputs, so every piece has its own backward node.
Tensor slice_impl(const Tensor& x, std::vector<int64_t> start, std::vector<int64_t> size, const char* name) {
  Tensor out = Tensor::empty(Shape(size), x.dtype(), x.device());
  const int r = x.rank();
  backend_of(x).copy_region(x, start, out, std::vector<int64_t>(static_cast<size_t>(r), 0), size, false);
  if (is_floating(x.dtype()) && autograd::needs_grad({x})) {
    Shape xs = x.shape();
    autograd::record(name, out, {x}, [xs, start, size](const Tensor& g) {
      // The slice's adjoint: g placed into a zero tensor of the input's shape.
      Tensor gx = zeros(xs, g.dtype(), g.device());
      backend_of(g).copy_region(g, std::vector<int64_t>(start.size(), 0), gx, start, size, false);
      return std::vector<Tensor>{gx};
    });
  }
  return out;
}

}  // namespace

Tensor reshape(const Tensor& x, const std::vector<int64_t>& shape) {
  std::vector<int64_t> dims = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      if (infer >= 0)
        throw ValueError("reshape: only one dimension can be -1 (inferred), got shape " + join(shape));
      infer = static_cast<int>(i);
    } else if (dims[i] < 0) {
      throw ValueError("reshape: invalid dimension " + std::to_string(dims[i]) + " in shape " + join(shape));
    } else {
      known *= dims[i];
    }
  }
  auto fail = [&] {
    throw ShapeError("reshape: cannot reshape a tensor of shape " + x.shape().str() + " (" +
                     std::to_string(x.numel()) + " elements) into shape " + join(shape));
  };
  if (infer >= 0) {
    // With a zero among the known extents the inferred one is ambiguous (NumPy refuses too).
    if (known == 0 || x.numel() % known != 0) fail();
    dims[static_cast<size_t>(infer)] = x.numel() / known;
  } else if (known != x.numel()) {
    fail();
  }
  Tensor out = x.view_as_shape(Shape(dims));
  if (autograd::needs_grad({x})) {
    std::vector<int64_t> back = x.shape().dims();
    autograd::record("reshape", out, {x}, [back](const Tensor& g) { return std::vector<Tensor>{reshape(g, back)}; });
  }
  return out;
}

Tensor transpose(const Tensor& x, const std::vector<int>& perm) {
  const int r = x.rank();
  std::vector<int> p(static_cast<size_t>(r));
  if (perm.empty()) {
    for (int i = 0; i < r; ++i) p[static_cast<size_t>(i)] = r - 1 - i;
  } else {
    bool ok = static_cast<int>(perm.size()) == r;
    std::vector<bool> seen(static_cast<size_t>(r), false);
    for (size_t i = 0; ok && i < perm.size(); ++i) {
      int a = perm[i] < 0 ? perm[i] + r : perm[i];
      if (a < 0 || a >= r || seen[static_cast<size_t>(a)]) {
        ok = false;
        break;
      }
      seen[static_cast<size_t>(a)] = true;
      p[i] = a;
    }
    if (!ok)
      throw ValueError("transpose: axes " + join(perm) + " are not a permutation of the " + std::to_string(r) +
                       " axes of a tensor of shape " + x.shape().str());
  }
  std::vector<int64_t> dims(static_cast<size_t>(r));
  for (int i = 0; i < r; ++i) dims[static_cast<size_t>(i)] = x.size(p[static_cast<size_t>(i)]);
  Tensor out = Tensor::empty(Shape(dims), x.dtype(), x.device());
  backend_of(x).permute(x, p, out);
  if (autograd::needs_grad({x})) {
    std::vector<int> inv(static_cast<size_t>(r));
    for (int i = 0; i < r; ++i) inv[static_cast<size_t>(p[static_cast<size_t>(i)])] = i;
    autograd::record("transpose", out, {x}, [inv](const Tensor& g) { return std::vector<Tensor>{transpose(g, inv)}; });
  }
  return out;
}

Tensor expand_dims(const Tensor& x, int axis) {
  const int a = normalize_axis(axis, x.rank() + 1, "expand_dims");
  std::vector<int64_t> dims = x.shape().dims();
  dims.insert(dims.begin() + a, 1);
  return reshape(x, dims);
}

Tensor squeeze(const Tensor& x, const std::vector<int>& axes) {
  const std::vector<int64_t>& d = x.shape().dims();
  std::vector<bool> drop(d.size(), false);
  if (axes.empty()) {
    for (size_t i = 0; i < d.size(); ++i) drop[i] = d[i] == 1;
  } else {
    for (int a : normalize_axes(axes, x.rank(), "squeeze")) {
      if (d[static_cast<size_t>(a)] != 1)
        throw ShapeError("squeeze: cannot squeeze axis " + std::to_string(a) + " of a tensor of shape " +
                         x.shape().str() + ": its size is " + std::to_string(d[static_cast<size_t>(a)]) +
                         ", not 1");
      drop[static_cast<size_t>(a)] = true;
    }
  }
  std::vector<int64_t> dims;
  for (size_t i = 0; i < d.size(); ++i)
    if (!drop[i]) dims.push_back(d[i]);
  return reshape(x, dims);
}

Tensor concatenate(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw ValueError("concatenate: needs at least one tensor, got none");
  const Tensor& x0 = xs[0];
  if (x0.rank() == 0)
    throw ShapeError("concatenate: cannot concatenate scalars (input 0 has shape " + x0.shape().str() + ")");
  const int r = x0.rank();
  const int ax = normalize_axis(axis, r, "concatenate");
  DType dt = x0.dtype();
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& xi = xs[i];
    if (xi.device() != x0.device())
      throw ValueError("concatenate: input " + std::to_string(i) + " is on " + xi.device().str() +
                       " but input 0 is on " + x0.device().str());
    bool ok = xi.rank() == r;
    for (int k = 0; ok && k < r; ++k)
      if (k != ax && xi.size(k) != x0.size(k)) ok = false;
    if (!ok)
      throw ShapeError("concatenate: input " + std::to_string(i) + " has shape " + xi.shape().str() +
                       " but input 0 has shape " + x0.shape().str() + "; all dimensions except axis " +
                       std::to_string(ax) + " must match");
    dt = promote_types(dt, xi.dtype());
    total += xi.size(ax);
  }
  std::vector<Tensor> ins;  // promoted inputs; casts are recorded, so gradients reach the originals
  ins.reserve(xs.size());
  for (const Tensor& xi : xs) ins.push_back(cast(xi, dt));

  std::vector<int64_t> dims = x0.shape().dims();
  dims[static_cast<size_t>(ax)] = total;
  Tensor out = Tensor::empty(Shape(dims), dt, x0.device());
  std::vector<int64_t> zero(static_cast<size_t>(r), 0), at(static_cast<size_t>(r), 0);
  std::vector<int64_t> offsets;
  for (const Tensor& xi : ins) {
    offsets.push_back(at[static_cast<size_t>(ax)]);
    backend_of(xi).copy_region(xi, zero, out, at, xi.shape().dims(), false);
    at[static_cast<size_t>(ax)] += xi.size(ax);
  }
  if (is_floating(dt) && autograd::needs_grad(ins)) {
    std::vector<Shape> shapes;
    std::vector<bool> wanted;
    for (const Tensor& xi : ins) {
      shapes.push_back(xi.shape());
      wanted.push_back(xi.requires_grad());
    }
    autograd::record("concatenate", out, ins, [shapes, wanted, offsets, ax](const Tensor& g) {
      std::vector<Tensor> grads(shapes.size());
      for (size_t i = 0; i < shapes.size(); ++i) {
        if (!wanted[i]) continue;
        std::vector<int64_t> start(shapes[i].dims().size(), 0);
        start[static_cast<size_t>(ax)] = offsets[i];
        Tensor gi = Tensor::empty(shapes[i], g.dtype(), g.device());
        backend_of(g).copy_region(g, start, gi, std::vector<int64_t>(start.size(), 0), shapes[i].dims(), false);
        grads[i] = gi;
      }
      return grads;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw ValueError("stack: needs at least one tensor, got none");
  for (size_t i = 1; i < xs.size(); ++i)
    if (xs[i].shape() != xs[0].shape())
      throw ShapeError("stack: input " + std::to_string(i) + " has shape " + xs[i].shape().str() +
                       " but input 0 has shape " + xs[0].shape().str() + "; all inputs must have the same shape");
  const int a = normalize_axis(axis, xs[0].rank() + 1, "stack");
  std::vector<Tensor> expanded;
  expanded.reserve(xs.size());
  for (const Tensor& x : xs) expanded.push_back(expand_dims(x, a));
  return concatenate(expanded, a);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int axis) {
  const int ax = normalize_axis(axis, x.rank(), "split");
  const int64_t extent = x.size(ax);
  int64_t sum = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw ValueError("split: sizes " + join(sizes) + " contain a negative size");
    sum += s;
  }
  if (sum != extent)
    throw ValueError("split: sizes " + join(sizes) + " sum to " + std::to_string(sum) + " but axis " +
                     std::to_string(ax) + " of shape " + x.shape().str() + " has size " + std::to_string(extent));
  std::vector<Tensor> outs;
  outs.reserve(sizes.size());
  std::vector<int64_t> start(static_cast<size_t>(x.rank()), 0);
  std::vector<int64_t> size = x.shape().dims();
  for (int64_t s : sizes) {
    size[static_cast<size_t>(ax)] = s;
    outs.push_back(slice_impl(x, start, size, "split"));
    start[static_cast<size_t>(ax)] += s;
  }
  return outs;
}

Tensor slice(const Tensor& x, const std::vector<int64_t>& start, const std::vector<int64_t>& size) {
  const int r = x.rank();
  if (static_cast<int>(start.size()) != r || static_cast<int>(size.size()) != r)
    throw ValueError("slice: start " + join(start) + " and size " + join(size) + " must each have one entry per axis " +
                     "of a tensor of shape " + x.shape().str());
  std::vector<int64_t> st(static_cast<size_t>(r)), sz(static_cast<size_t>(r));
  for (int i = 0; i < r; ++i) {
    const size_t k = static_cast<size_t>(i);
    const int64_t d = x.size(i);
    const int64_t s = start[k] < 0 ? start[k] + d : start[k];
    const int64_t n = size[k] == -1 ? d - s : size[k];
    if (s < 0 || s > d || n < 0 || s + n > d)
      throw IndexError("slice: start " + std::to_string(start[k]) + " with size " + std::to_string(size[k]) +
                       " is out of bounds for axis " + std::to_string(i) + " of size " + std::to_string(d) +
                       " (shape " + x.shape().str() + ")");
    st[k] = s;
    sz[k] = n;
  }
  return slice_impl(x, st, sz, "slice");
}

}  // namespace rk::ops
