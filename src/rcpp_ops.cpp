// One entry point for every engine op: rk_call_op(name, tensors, params) looks the name up
// in a table of small adapters. Adding an op is one line here plus one R wrapper.
// Axes arrive 0-based (R converts its 1-based axes before calling).
#include "rcpp_glue.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/rng.h"
#include "ops/ops.h"

namespace {

namespace ops = rk::ops;
using rk::Tensor;

// The tensors and named parameters of one call; accessors throw ValueError naming the op.
class Args {
 public:
  Args(const std::string& op, std::vector<Tensor> tensors, Rcpp::List params)
      : op_(op), tensors_(std::move(tensors)), params_(std::move(params)) {}

  const Tensor& t(size_t i) const { return tensors_.at(i); }
  const std::vector<Tensor>& tensors() const { return tensors_; }

  double num(const char* name) const {
    SEXP v = get(name);
    if ((TYPEOF(v) != REALSXP && TYPEOF(v) != INTSXP && TYPEOF(v) != LGLSXP) || XLENGTH(v) != 1)
      bad(name, "a single number");
    double d = Rf_asReal(v);
    if (TYPEOF(v) != REALSXP && d == NA_REAL) bad(name, "a single number, not NA");
    return d;
  }
  int integer(const char* name) const {
    double d = num(name);
    if (!std::isfinite(d) || d != std::trunc(d) || std::fabs(d) > 2147483647.0) bad(name, "a whole number");
    return static_cast<int>(d);
  }
  bool flag(const char* name) const {
    SEXP v = get(name);
    if (TYPEOF(v) != LGLSXP || XLENGTH(v) != 1 || LOGICAL(v)[0] == NA_LOGICAL) bad(name, "TRUE or FALSE");
    return LOGICAL(v)[0] != 0;
  }
  std::vector<int64_t> int64s(const char* name) const {
    SEXP v = get(name);
    std::vector<int64_t> out;
    if (Rf_isNull(v)) return out;
    if (TYPEOF(v) != REALSXP && TYPEOF(v) != INTSXP) bad(name, "a vector of whole numbers");
    for (R_xlen_t i = 0; i < XLENGTH(v); ++i) {
      double d = TYPEOF(v) == REALSXP ? REAL(v)[i] : (INTEGER(v)[i] == NA_INTEGER ? NA_REAL : INTEGER(v)[i]);
      if (!std::isfinite(d) || d != std::trunc(d)) bad(name, "a vector of whole numbers without NA");
      out.push_back(static_cast<int64_t>(d));
    }
    return out;
  }
  std::vector<int> ints(const char* name) const {
    std::vector<int> out;
    for (int64_t v : int64s(name)) {
      if (v > INT32_MAX || v < INT32_MIN) bad(name, "a vector of small whole numbers");
      out.push_back(static_cast<int>(v));
    }
    return out;
  }
  rk::Shape shape(const char* name) const { return rk::Shape(int64s(name)); }
  rk::DType dtype(const char* name) const {
    SEXP v = get(name);
    if (TYPEOF(v) != STRSXP || XLENGTH(v) != 1 || STRING_ELT(v, 0) == NA_STRING) bad(name, "a dtype name");
    return rk::dtype_from_name(CHAR(STRING_ELT(v, 0)));
  }
  /// Seeds the default generator from param "seed" when given (R passes one drawn from its RNG).
  void seed_generator() const {
    if (!has("seed")) return;
    double s = num("seed");
    if (!(s >= 0) || s != std::trunc(s) || s > 9007199254740992.0) bad("seed", "a non-negative whole number");
    rk::default_generator().seed(static_cast<uint64_t>(s));
  }

 private:
  bool has(const char* name) const {
    return params_.containsElementNamed(name) && !Rf_isNull(params_[std::string(name)]);
  }
  SEXP get(const char* name) const {
    if (!params_.containsElementNamed(name))
      throw rk::ValueError(op_ + ": missing parameter '" + name + "'");
    return params_[std::string(name)];
  }
  [[noreturn]] void bad(const char* name, const char* what) const {
    throw rk::ValueError(op_ + ": parameter '" + std::string(name) + "' must be " + what);
  }

  const std::string& op_;
  std::vector<Tensor> tensors_;
  Rcpp::List params_;
};

SEXP out(Tensor t) { return rkglue::wrap_tensor(std::move(t)); }

SEXP out_list(const std::vector<Tensor>& ts) {
  Rcpp::List l(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) l[i] = out(ts[i]);
  return l;
}

using Adapter = SEXP (*)(const Args&);

/// An op's adapter and how many tensors it takes (-1: any number, e.g. concatenate).
struct OpEntry {
  int n_tensors;
  Adapter fn;
};

#define RK_UNARY(NAME) {#NAME, {1, [](const Args& a) { return out(ops::NAME(a.t(0))); }}}
#define RK_BINARY(NAME) {#NAME, {2, [](const Args& a) { return out(ops::NAME(a.t(0), a.t(1))); }}}
#define RK_REDUCE(NAME) \
  {#NAME, {1, [](const Args& a) { return out(ops::NAME(a.t(0), a.ints("axis"), a.flag("keepdims"))); }}}

const std::unordered_map<std::string, OpEntry>& op_table() {
  static const std::unordered_map<std::string, OpEntry> table = {
      // creation: with no input to follow, new tensors go to the default device (weights made by
      // initializers, constants), like everything else made from R
      {"full", {0, [](const Args& a) {
         return out(ops::full(a.shape("shape"), a.num("value"), a.dtype("dtype"), rk::default_device()));
       }}},
      {"zeros", {0, [](const Args& a) { return out(ops::zeros(a.shape("shape"), a.dtype("dtype"), rk::default_device())); }}},
      {"ones", {0, [](const Args& a) { return out(ops::ones(a.shape("shape"), a.dtype("dtype"), rk::default_device())); }}},
      RK_UNARY(zeros_like),
      RK_UNARY(ones_like),
      {"scalar", {0, [](const Args& a) { return out(ops::scalar(a.num("value"), a.dtype("dtype"), rk::default_device())); }}},
      RK_UNARY(clone),
      {"cast", {1, [](const Args& a) { return out(ops::cast(a.t(0), a.dtype("dtype"))); }}},
      {"random_uniform", {0, [](const Args& a) {
         a.seed_generator();
         return out(ops::random_uniform(a.shape("shape"), a.num("minval"), a.num("maxval"), a.dtype("dtype"),
                                           rk::default_device()));
       }}},
      {"random_normal", {0, [](const Args& a) {
         a.seed_generator();
         return out(ops::random_normal(a.shape("shape"), a.num("mean"), a.num("stddev"), a.dtype("dtype"),
                                          rk::default_device()));
       }}},
      // elementwise
      RK_BINARY(add), RK_BINARY(subtract), RK_BINARY(multiply), RK_BINARY(divide), RK_BINARY(power),
      RK_BINARY(maximum), RK_BINARY(minimum),
      RK_UNARY(negative), RK_UNARY(exp), RK_UNARY(log), RK_UNARY(log1p), RK_UNARY(sqrt), RK_UNARY(square),
      RK_UNARY(abs), RK_UNARY(sign), RK_UNARY(reciprocal), RK_UNARY(tanh), RK_UNARY(sigmoid), RK_UNARY(relu),
      RK_UNARY(relu6), RK_UNARY(selu), RK_UNARY(softplus), RK_UNARY(softsign), RK_UNARY(silu), RK_UNARY(mish),
      RK_UNARY(erf),
      {"elu", {1, [](const Args& a) { return out(ops::elu(a.t(0), a.num("alpha"))); }}},
      {"gelu", {1, [](const Args& a) { return out(ops::gelu(a.t(0), a.flag("approximate"))); }}},
      {"leaky_relu", {1, [](const Args& a) { return out(ops::leaky_relu(a.t(0), a.num("negative_slope"))); }}},
      {"hard_sigmoid",
       {1, [](const Args& a) { return out(ops::hard_sigmoid(a.t(0), a.num("slope"), a.num("offset"))); }}},
      {"clip", {1, [](const Args& a) { return out(ops::clip(a.t(0), a.num("min"), a.num("max"))); }}},
      RK_BINARY(equal), RK_BINARY(not_equal), RK_BINARY(less), RK_BINARY(less_equal), RK_BINARY(greater),
      RK_BINARY(greater_equal), RK_BINARY(logical_and), RK_BINARY(logical_or), RK_UNARY(logical_not),
      {"where", {3, [](const Args& a) { return out(ops::where(a.t(0), a.t(1), a.t(2))); }}},
      {"dropout", {1, [](const Args& a) {
         a.seed_generator();
         return out(ops::dropout(a.t(0), a.num("rate"), a.shape("noise_shape")));
       }}},
      {"sum_to", {1, [](const Args& a) { return out(ops::sum_to(a.t(0), a.shape("shape"))); }}},
      {"broadcast_to", {1, [](const Args& a) { return out(ops::broadcast_to(a.t(0), a.shape("shape"))); }}},
      // reductions
      RK_REDUCE(sum), RK_REDUCE(mean), RK_REDUCE(max), RK_REDUCE(min), RK_REDUCE(prod), RK_REDUCE(logsumexp),
      {"argmax", {1, [](const Args& a) { return out(ops::argmax(a.t(0), a.integer("axis"), a.flag("keepdims"))); }}},
      {"argmin", {1, [](const Args& a) { return out(ops::argmin(a.t(0), a.integer("axis"), a.flag("keepdims"))); }}},
      // softmax and losses
      {"softmax", {1, [](const Args& a) { return out(ops::softmax(a.t(0), a.integer("axis"))); }}},
      {"log_softmax", {1, [](const Args& a) { return out(ops::log_softmax(a.t(0), a.integer("axis"))); }}},
      {"categorical_crossentropy", {2, [](const Args& a) {
         return out(ops::categorical_crossentropy(a.t(0), a.t(1), a.flag("from_logits"), a.num("epsilon")));
       }}},
      {"sparse_categorical_crossentropy", {2, [](const Args& a) {
         return out(ops::sparse_categorical_crossentropy(a.t(0), a.t(1), a.flag("from_logits"), a.num("epsilon")));
       }}},
      {"binary_crossentropy", {2, [](const Args& a) {
         return out(ops::binary_crossentropy(a.t(0), a.t(1), a.flag("from_logits"), a.num("epsilon")));
       }}},
      // linear algebra
      RK_BINARY(matmul),
      // shape and indexing
      {"reshape", {1, [](const Args& a) { return out(ops::reshape(a.t(0), a.int64s("shape"))); }}},
      {"transpose", {1, [](const Args& a) { return out(ops::transpose(a.t(0), a.ints("perm"))); }}},
      {"expand_dims", {1, [](const Args& a) { return out(ops::expand_dims(a.t(0), a.integer("axis"))); }}},
      {"squeeze", {1, [](const Args& a) { return out(ops::squeeze(a.t(0), a.ints("axis"))); }}},
      {"concatenate", {-1, [](const Args& a) { return out(ops::concatenate(a.tensors(), a.integer("axis"))); }}},
      {"stack", {-1, [](const Args& a) { return out(ops::stack(a.tensors(), a.integer("axis"))); }}},
      {"split", {1, [](const Args& a) { return out_list(ops::split(a.t(0), a.int64s("sizes"), a.integer("axis"))); }}},
      {"slice", {1, [](const Args& a) { return out(ops::slice(a.t(0), a.int64s("start"), a.int64s("size"))); }}},
      {"take", {2, [](const Args& a) { return out(ops::take(a.t(0), a.t(1), a.integer("axis"))); }}},
      {"one_hot", {1, [](const Args& a) {
         int depth = a.integer("depth");
         if (depth < 0) throw rk::ValueError("one_hot: depth must be >= 0, got " + std::to_string(depth));
         return out(ops::one_hot(a.t(0), depth, a.dtype("dtype")));
       }}},
  };
  return table;
}

#undef RK_UNARY
#undef RK_BINARY
#undef RK_REDUCE

}  // namespace

/// Calls engine op `name` on `tensors` (a list of rkeras_tensor) with named `params`.
// [[Rcpp::export(rng = false)]]
SEXP rk_call_op(std::string name, SEXP tensors, SEXP params) {
  return rkglue::guard([&] {
    const auto& table = op_table();
    auto it = table.find(name);
    if (it == table.end()) throw rk::ValueError("unknown op '" + name + "'");
    if (TYPEOF(tensors) != VECSXP) throw rk::TypeError(name + ": tensors must be a list");
    if (!Rf_isNull(params) && TYPEOF(params) != VECSXP) throw rk::TypeError(name + ": params must be a list");
    R_xlen_t n = XLENGTH(tensors);
    int want = it->second.n_tensors;
    if (want >= 0 && n != want)
      throw rk::ValueError(name + " takes " + std::to_string(want) + " tensor(s), got " + std::to_string(n));
    if (want < 0 && n == 0) throw rk::ValueError(name + " needs at least one tensor");
    std::vector<Tensor> ts;
    ts.reserve(static_cast<size_t>(n));
    for (R_xlen_t i = 0; i < n; ++i) {
      std::string what = name + " input " + std::to_string(static_cast<long long>(i) + 1);
      ts.push_back(rkglue::tensor_ref(VECTOR_ELT(tensors, i), what.c_str()));
    }
    Rcpp::List p = Rf_isNull(params) ? Rcpp::List() : Rcpp::List(params);
    Args args(name, std::move(ts), p);
    return it->second.fn(args);
  });
}

/// Names of every op rk_call_op() knows (sorted).
// [[Rcpp::export(rng = false)]]
Rcpp::CharacterVector rk_op_names() {
  return rkglue::guard([] {
    std::vector<std::string> names;
    for (const auto& kv : op_table()) names.push_back(kv.first);
    std::sort(names.begin(), names.end());
    return Rcpp::wrap(names);
  });
}
