// Elementwise ops: dtype promotion, broadcasting checks and the backward of each op.
// Backward closures capture detached inputs (never the op's own output handle) and only the
// tensors the needed gradients use.
#include <string>

#include "ops/ops.h"

namespace rk::ops {
namespace {

void check_defined(const Tensor& t, const char* op) {
  if (!t.defined()) throw ValueError(std::string(op) + ": got an undefined tensor");
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  if (a.device() != b.device())
    throw ValueError(std::string(op) + ": operands are on different devices (" + a.device().str() + " and " +
                     b.device().str() + ")");
}

// Casts both operands to `dt` (recorded, so gradients flow back to the original dtype), checks that
// their shapes broadcast and returns the broadcast shape.
Shape prepare(const char* op, Tensor& a, Tensor& b, DType dt) {
  check_defined(a, op);
  check_defined(b, op);
  check_same_device(a, b, op);
  Shape s = broadcast_shapes(a.shape(), b.shape(), op);
  a = cast(a, dt);
  b = cast(b, dt);
  return s;
}

// Arithmetic result dtype: true division is floating (as Keras); bool arithmetic counts in int32 (as R).
DType arith_dtype(BinaryOp op, DType a, DType b) {
  DType dt = promote_types(a, b);
  if (op == BinaryOp::Div && !is_floating(dt)) return DType::Float32;
  if (dt == DType::Bool && op != BinaryOp::Maximum && op != BinaryOp::Minimum) return DType::Int32;
  return dt;
}

// Runs an arithmetic op; a and b come back cast to the result dtype. Returns whether to record.
Tensor arith_forward(const char* op_name, BinaryOp op, Tensor& a, Tensor& b, bool& record) {
  const DType dt = arith_dtype(op, a.defined() ? a.dtype() : DType::Float32, b.defined() ? b.dtype() : DType::Float32);
  const Shape s = prepare(op_name, a, b, dt);
  Tensor out = Tensor::empty(s, dt, a.device());
  backend_of(a).binary(op, a, b, out);
  record = is_floating(dt) && autograd::needs_grad({a, b});
  return out;
}

Tensor compare(const char* op_name, BinaryOp op, Tensor a, Tensor b) {
  check_defined(a, op_name);
  check_defined(b, op_name);
  const Shape s = prepare(op_name, a, b, promote_types(a.dtype(), b.dtype()));
  Tensor out = Tensor::empty(s, DType::Bool, a.device());
  backend_of(a).binary(op, a, b, out);
  return out;
}

Tensor logical(const char* op_name, BinaryOp op, Tensor a, Tensor b) {
  const Shape s = prepare(op_name, a, b, DType::Bool);
  Tensor out = Tensor::empty(s, DType::Bool, a.device());
  backend_of(a).binary(op, a, b, out);
  return out;
}

Tensor keep_if(bool need, const Tensor& t) { return need ? t.detach() : Tensor(); }

// Ops that keep int32 (and count bool as int32); every other unary op computes in float32 for them.
bool keeps_integers(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: case UnaryOp::Abs: case UnaryOp::Sign: case UnaryOp::Square:
    case UnaryOp::Relu: case UnaryOp::Relu6: case UnaryOp::Clip:
      return true;
    default:
      return false;
  }
}

Tensor unary_op(const char* name, UnaryOp op, const Tensor& x0, UnaryParams p = {}) {
  check_defined(x0, name);
  Tensor x = x0;
  if (!is_floating(x.dtype())) x = cast(x, keeps_integers(op) ? DType::Int32 : DType::Float32);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_of(x).unary(op, x, out, p);
  if (is_floating(x.dtype()) && autograd::needs_grad({x})) {
    autograd::record(name, out, {x}, [xd = x.detach(), yd = out.detach(), op, p](const Tensor& g) {
      Tensor gx = Tensor::empty(xd.shape(), xd.dtype(), xd.device());
      backend_of(xd).unary_backward(op, xd, yd, g, gx, p);
      return std::vector<Tensor>{gx};
    });
  }
  return out;
}

Tensor zero_like_scalar(const Tensor& t) { return scalar(0.0, t.dtype(), t.device()); }

}  // namespace

// ------------------------------------------------------------------------------- arithmetic

Tensor add(const Tensor& a0, const Tensor& b0) {
  Tensor a = a0, b = b0;
  bool rec = false;
  Tensor out = arith_forward("add", BinaryOp::Add, a, b, rec);
  if (rec) {
    autograd::record("add", out, {a, b},
                     [sa = a.shape(), sb = b.shape(), na = a.requires_grad(), nb = b.requires_grad()](const Tensor& g) {
                       return std::vector<Tensor>{na ? sum_to(g, sa) : Tensor(), nb ? sum_to(g, sb) : Tensor()};
                     });
  }
  return out;
}

Tensor subtract(const Tensor& a0, const Tensor& b0) {
  Tensor a = a0, b = b0;
  bool rec = false;
  Tensor out = arith_forward("subtract", BinaryOp::Sub, a, b, rec);
  if (rec) {
    autograd::record("subtract", out, {a, b},
                     [sa = a.shape(), sb = b.shape(), na = a.requires_grad(), nb = b.requires_grad()](const Tensor& g) {
                       return std::vector<Tensor>{na ? sum_to(g, sa) : Tensor(), nb ? sum_to(negative(g), sb) : Tensor()};
                     });
  }
  return out;
}

Tensor multiply(const Tensor& a0, const Tensor& b0) {
  Tensor a = a0, b = b0;
  bool rec = false;
  Tensor out = arith_forward("multiply", BinaryOp::Mul, a, b, rec);
  if (rec) {
    const bool na = a.requires_grad(), nb = b.requires_grad();
    autograd::record("multiply", out, {a, b},
                     [ad = keep_if(nb, a), bd = keep_if(na, b), sa = a.shape(), sb = b.shape()](const Tensor& g) {
                       return std::vector<Tensor>{bd.defined() ? sum_to(multiply(g, bd), sa) : Tensor(),
                                                  ad.defined() ? sum_to(multiply(g, ad), sb) : Tensor()};
                     });
  }
  return out;
}

Tensor divide(const Tensor& a0, const Tensor& b0) {
  Tensor a = a0, b = b0;
  bool rec = false;
  Tensor out = arith_forward("divide", BinaryOp::Div, a, b, rec);
  if (rec) {
    const bool na = a.requires_grad(), nb = b.requires_grad();
    // d(a/b)/db = -(a/b)/b, from the output rather than a so a need not be kept.
    autograd::record("divide", out, {a, b},
                     [bd = b.detach(), od = keep_if(nb, out), sa = a.shape(), sb = b.shape(), na](const Tensor& g) {
                       Tensor gb_full = od.defined() ? negative(divide(multiply(g, od), bd)) : Tensor();
                       return std::vector<Tensor>{na ? sum_to(divide(g, bd), sa) : Tensor(),
                                                  gb_full.defined() ? sum_to(gb_full, sb) : Tensor()};
                     });
  }
  return out;
}

Tensor power(const Tensor& a0, const Tensor& b0) {
  Tensor a = a0, b = b0;
  bool rec = false;
  Tensor out = arith_forward("power", BinaryOp::Pow, a, b, rec);
  if (rec) {
    const bool na = a.requires_grad(), nb = b.requires_grad();
    autograd::record("power", out, {a, b},
                     [ad = a.detach(), bd = b.detach(), od = keep_if(nb, out), na](const Tensor& g) {
                       Tensor ga, gb;
                       if (na) {
                         // b * a^(b-1) rather than b * out / a, which fails at a == 0.
                         Tensor d = multiply(bd, power(ad, subtract(bd, scalar(1.0, bd.dtype(), bd.device()))));
                         ga = sum_to(multiply(g, d), ad.shape());
                       }
                       if (od.defined()) {
                         // log(a) only where a > 0 (TensorFlow's convention); elsewhere the gradient is 0.
                         Tensor pos = greater(ad, zero_like_scalar(ad));
                         Tensor safe = where(pos, ad, scalar(1.0, ad.dtype(), ad.device()));
                         gb = sum_to(multiply(g, multiply(od, log(safe))), bd.shape());
                       }
                       return std::vector<Tensor>{ga, gb};
                     });
  }
  return out;
}

namespace {
// Backward of maximum/minimum: `mask` marks where a was chosen (ties included).
std::vector<Tensor> select_grads(const Tensor& g, const Tensor& mask, const Shape& sa, const Shape& sb, bool na,
                                 bool nb) {
  Tensor zero = zero_like_scalar(g);
  return {na ? sum_to(where(mask, g, zero), sa) : Tensor(), nb ? sum_to(where(mask, zero, g), sb) : Tensor()};
}
}  // namespace

Tensor maximum(const Tensor& a0, const Tensor& b0) {
  Tensor a = a0, b = b0;
  bool rec = false;
  Tensor out = arith_forward("maximum", BinaryOp::Maximum, a, b, rec);
  if (rec) {
    autograd::record("maximum", out, {a, b},
                     [ad = a.detach(), bd = b.detach(), na = a.requires_grad(), nb = b.requires_grad()](const Tensor& g) {
                       return select_grads(g, greater_equal(ad, bd), ad.shape(), bd.shape(), na, nb);
                     });
  }
  return out;
}

Tensor minimum(const Tensor& a0, const Tensor& b0) {
  Tensor a = a0, b = b0;
  bool rec = false;
  Tensor out = arith_forward("minimum", BinaryOp::Minimum, a, b, rec);
  if (rec) {
    autograd::record("minimum", out, {a, b},
                     [ad = a.detach(), bd = b.detach(), na = a.requires_grad(), nb = b.requires_grad()](const Tensor& g) {
                       return select_grads(g, less_equal(ad, bd), ad.shape(), bd.shape(), na, nb);
                     });
  }
  return out;
}

// ------------------------------------------------------------------------------- unary

Tensor negative(const Tensor& x) { return unary_op("negative", UnaryOp::Neg, x); }
Tensor exp(const Tensor& x) { return unary_op("exp", UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary_op("log", UnaryOp::Log, x); }
Tensor log1p(const Tensor& x) { return unary_op("log1p", UnaryOp::Log1p, x); }
Tensor sqrt(const Tensor& x) { return unary_op("sqrt", UnaryOp::Sqrt, x); }
Tensor square(const Tensor& x) { return unary_op("square", UnaryOp::Square, x); }
Tensor abs(const Tensor& x) { return unary_op("abs", UnaryOp::Abs, x); }
Tensor sign(const Tensor& x) { return unary_op("sign", UnaryOp::Sign, x); }
Tensor reciprocal(const Tensor& x) { return unary_op("reciprocal", UnaryOp::Reciprocal, x); }
Tensor tanh(const Tensor& x) { return unary_op("tanh", UnaryOp::Tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary_op("sigmoid", UnaryOp::Sigmoid, x); }
Tensor relu(const Tensor& x) { return unary_op("relu", UnaryOp::Relu, x); }
Tensor relu6(const Tensor& x) { return unary_op("relu6", UnaryOp::Relu6, x); }
Tensor elu(const Tensor& x, double alpha) { return unary_op("elu", UnaryOp::Elu, x, {alpha, 0}); }
Tensor selu(const Tensor& x) { return unary_op("selu", UnaryOp::Selu, x); }
Tensor softplus(const Tensor& x) { return unary_op("softplus", UnaryOp::Softplus, x); }
Tensor softsign(const Tensor& x) { return unary_op("softsign", UnaryOp::Softsign, x); }
Tensor gelu(const Tensor& x, bool approximate) {
  return approximate ? unary_op("gelu", UnaryOp::GeluTanh, x) : unary_op("gelu", UnaryOp::Gelu, x);
}
Tensor silu(const Tensor& x) { return unary_op("silu", UnaryOp::Silu, x); }
Tensor mish(const Tensor& x) { return unary_op("mish", UnaryOp::Mish, x); }
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return unary_op("leaky_relu", UnaryOp::LeakyRelu, x, {negative_slope, 0});
}
Tensor hard_sigmoid(const Tensor& x, double slope, double offset) {
  return unary_op("hard_sigmoid", UnaryOp::HardSigmoid, x, {slope, offset});
}
Tensor erf(const Tensor& x) { return unary_op("erf", UnaryOp::Erf, x); }

Tensor clip(const Tensor& x, double lo, double hi) {
  if (lo != lo || hi != hi) throw ValueError("clip: bounds must not be NaN");
  return unary_op("clip", UnaryOp::Clip, x, {lo, hi});
}

// ------------------------------------------------------------------------------- comparisons

Tensor equal(const Tensor& a, const Tensor& b) { return compare("equal", BinaryOp::Equal, a, b); }
Tensor not_equal(const Tensor& a, const Tensor& b) { return compare("not_equal", BinaryOp::NotEqual, a, b); }
Tensor less(const Tensor& a, const Tensor& b) { return compare("less", BinaryOp::Less, a, b); }
Tensor less_equal(const Tensor& a, const Tensor& b) { return compare("less_equal", BinaryOp::LessEqual, a, b); }
Tensor greater(const Tensor& a, const Tensor& b) { return compare("greater", BinaryOp::Greater, a, b); }
Tensor greater_equal(const Tensor& a, const Tensor& b) {
  return compare("greater_equal", BinaryOp::GreaterEqual, a, b);
}
Tensor logical_and(const Tensor& a, const Tensor& b) { return logical("logical_and", BinaryOp::LogicalAnd, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return logical("logical_or", BinaryOp::LogicalOr, a, b); }

Tensor logical_not(const Tensor& x) {
  check_defined(x, "logical_not");
  Tensor out = Tensor::empty(x.shape(), DType::Bool, x.device());
  backend_of(x).unary(UnaryOp::LogicalNot, x, out, {});
  return out;
}

// ------------------------------------------------------------------------------- where, dropout

Tensor where(const Tensor& cond0, const Tensor& a0, const Tensor& b0) {
  check_defined(cond0, "where");
  check_defined(a0, "where");
  check_defined(b0, "where");
  Tensor cond = cond0, a = a0, b = b0;
  const DType dt = promote_types(a.dtype(), b.dtype());
  Shape sab = prepare("where", a, b, dt);
  check_same_device(cond, a, "where");
  const Shape s = broadcast_shapes(cond.shape(), sab, "where");
  cond = cast(cond, DType::Bool);
  Tensor out = Tensor::empty(s, dt, a.device());
  backend_of(a).where(cond, a, b, out);
  if (is_floating(dt) && autograd::needs_grad({a, b})) {
    autograd::record("where", out, {a, b},
                     [cd = cond.detach(), sa = a.shape(), sb = b.shape(), na = a.requires_grad(),
                      nb = b.requires_grad()](const Tensor& g) {
                       Tensor zero = zero_like_scalar(g);
                       return std::vector<Tensor>{na ? sum_to(where(cd, g, zero), sa) : Tensor(),
                                                  nb ? sum_to(where(cd, zero, g), sb) : Tensor()};
                     });
  }
  return out;
}

Tensor dropout(const Tensor& x0, double rate, const Shape& noise_shape) {
  check_defined(x0, "dropout");
  if (!(rate >= 0.0 && rate < 1.0))
    throw ValueError("dropout: rate must be in [0, 1), got " + std::to_string(rate));
  Tensor x = is_floating(x0.dtype()) ? x0 : cast(x0, DType::Float32);
  if (rate == 0.0) return x;
  const Shape ns = noise_shape.rank() == 0 ? x.shape() : noise_shape;
  if (ns != x.shape()) {
    Shape s = broadcast_shapes(ns, x.shape(), "dropout");
    if (s != x.shape())
      throw ShapeError("dropout: noise_shape " + ns.str() + " does not broadcast to the input shape " +
                       x.shape().str());
  }
  Tensor mask = Tensor::empty(ns, x.dtype(), x.device());
  backend_of(x).dropout_mask(mask, rate, 1.0 / (1.0 - rate), default_generator());
  // multiply's backward is g * mask (summed over broadcast axes of x, if any): exactly dropout's.
  return multiply(x, mask);
}

// ------------------------------------------------------------------------------- broadcasting

Tensor sum_to(const Tensor& g, const Shape& shape) {
  check_defined(g, "sum_to");
  if (g.shape() == shape) return g;
  const int gr = g.rank(), sr = shape.rank(), lead = gr - sr;
  auto fail = [&]() {
    throw ShapeError("sum_to: cannot sum a gradient of shape " + g.shape().str() + " down to shape " + shape.str());
  };
  std::vector<int> axes;
  for (int i = 0; i < gr; ++i) {
    const int64_t gd = g.size(i);
    if (i < lead) {
      if (gd != 1) axes.push_back(i);
      continue;
    }
    const int64_t sd = shape[i - lead];
    if (sd == gd) continue;
    if (sd != 1) fail();
    axes.push_back(i);
  }
  for (int i = 0; i < -lead; ++i)
    if (shape[i] != 1) fail();
  Tensor out;
  if (axes.empty()) {
    out = g.view_as_shape(shape);
  } else {
    out = Tensor::empty(shape, g.dtype(), g.device());
    backend_of(g).reduce(ReduceOp::Sum, g, axes, out);
  }
  if (autograd::needs_grad({g})) {
    autograd::record("sum_to", out, {g}, [gs = g.shape()](const Tensor& gg) {
      return std::vector<Tensor>{broadcast_to(gg, gs)};
    });
  }
  return out;
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  check_defined(x, "broadcast_to");
  if (x.shape() == shape) return x;
  const Shape s = broadcast_shapes(x.shape(), shape, "broadcast_to");
  if (s != shape)
    throw ShapeError("broadcast_to: cannot broadcast shape " + x.shape().str() + " to shape " + shape.str());
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  backend_of(x).broadcast_to(x, out);
  if (autograd::needs_grad({x})) {
    autograd::record("broadcast_to", out, {x}, [xs = x.shape()](const Tensor& g) {
      return std::vector<Tensor>{sum_to(g, xs)};
    });
  }
  return out;
}

}  // namespace rk::ops
