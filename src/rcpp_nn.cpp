// R <-> engine layers and graphs: creating layers from Keras configs, shape inference and weight
// specs for summary()/build, eager calls, R functions as external layers, graph forward and a
// fast predict() path (batches sliced in C++, no autograd, outputs written straight into R arrays).
#include "rcpp_nn.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "autograd/autograd.h"
#include "core/rng.h"
#include "ops/ops.h"
#include "rcpp_glue.h"

namespace rkglue {

namespace {
std::string r_class_of(SEXP x) {
  SEXP cls = Rf_getAttrib(x, R_ClassSymbol);
  if (!Rf_isNull(cls) && XLENGTH(cls) > 0) return CHAR(STRING_ELT(cls, 0));
  return Rf_type2char(TYPEOF(x));
}

}  // namespace

// Keras config -> Attrs: numbers/integers/logicals (NA -> NaN), single strings, lists of single
// numbers (flattened, e.g. axes = list(1, 2)); NULL entries (Keras None) are left out.
rk::nn::Attrs attrs_from_r(SEXP x, const char* what) {
  rk::nn::Attrs a;
  if (Rf_isNull(x)) return a;
  if (TYPEOF(x) != VECSXP) throw rk::TypeError(std::string(what) + " must be a named list, got " + r_class_of(x));
  SEXP names = Rf_getAttrib(x, R_NamesSymbol);
  const R_xlen_t n = XLENGTH(x);
  if (n > 0 && Rf_isNull(names)) throw rk::TypeError(std::string(what) + " must be a named list");
  for (R_xlen_t i = 0; i < n; ++i) {
    std::string key = CHAR(STRING_ELT(names, i));
    if (key.empty()) throw rk::TypeError(std::string(what) + " must be a named list (element " + std::to_string(i + 1) + " has no name)");
    SEXP v = VECTOR_ELT(x, i);
    auto numbers = [&](SEXP e, std::vector<double>& out) {
      const R_xlen_t m = XLENGTH(e);
      switch (TYPEOF(e)) {
        case REALSXP:
          for (R_xlen_t j = 0; j < m; ++j) out.push_back(REAL(e)[j]);  // NA_real_ is a NaN
          return true;
        case INTSXP:
        case LGLSXP: {
          const int* p = TYPEOF(e) == INTSXP ? INTEGER(e) : LOGICAL(e);
          for (R_xlen_t j = 0; j < m; ++j) out.push_back(p[j] == NA_INTEGER ? NAN : static_cast<double>(p[j]));
          return true;
        }
        default: return false;
      }
    };
    if (Rf_isNull(v)) continue;
    if (TYPEOF(v) == STRSXP) {
      if (XLENGTH(v) != 1) throw rk::TypeError(std::string(what) + "$" + key + " must be a single string");
      if (STRING_ELT(v, 0) == NA_STRING) continue;
      a.set(key, std::string(CHAR(STRING_ELT(v, 0))));
      continue;
    }
    std::vector<double> nums;
    bool ok = numbers(v, nums);
    if (!ok && TYPEOF(v) == VECSXP) {
      ok = true;
      for (R_xlen_t j = 0; ok && j < XLENGTH(v); ++j) {
        SEXP e = VECTOR_ELT(v, j);
        if (Rf_isNull(e)) nums.push_back(NAN);  // list(NULL, 3): None entries
        else ok = XLENGTH(e) == 1 && numbers(e, nums);
      }
    }
    if (!ok) throw rk::TypeError(std::string(what) + "$" + key + " must be a number vector or a single string, got " + r_class_of(v));
    a.set(key, std::move(nums));
  }
  return a;
}

namespace {

// An R vector of whole numbers; NA allowed (-1) when `allow_na`.
std::vector<int64_t> ints_from_r(SEXP x, const std::string& what, bool allow_na) {
  std::vector<int64_t> out;
  if (Rf_isNull(x)) return out;
  const R_xlen_t n = XLENGTH(x);
  auto bad = [&](const std::string& why) { throw rk::ValueError(what + " " + why); };
  switch (TYPEOF(x)) {
    case INTSXP:
    case LGLSXP: {
      const int* p = TYPEOF(x) == INTSXP ? INTEGER(x) : LOGICAL(x);
      for (R_xlen_t i = 0; i < n; ++i) {
        if (p[i] == NA_INTEGER) {
          if (!allow_na) bad("must not contain NA");
          out.push_back(-1);
        } else {
          out.push_back(p[i]);
        }
      }
      break;
    }
    case REALSXP:
      for (R_xlen_t i = 0; i < n; ++i) {
        double v = REAL(x)[i];
        if (std::isnan(v)) {
          if (!allow_na) bad("must not contain NA");
          out.push_back(-1);
        } else if (v != std::floor(v) || std::fabs(v) > 9e15) {
          bad("must hold whole numbers, got " + std::to_string(v));
        } else {
          out.push_back(static_cast<int64_t>(v));
        }
      }
      break;
    default: throw rk::TypeError(what + " must be an integer vector, got " + r_class_of(x));
  }
  return out;
}

std::vector<int> ids_from_r(SEXP x, const std::string& what) {
  std::vector<int> out;
  for (int64_t v : ints_from_r(x, what, false)) out.push_back(static_cast<int>(v));
  return out;
}

// A list of shapes (integer vectors, NA = None/unknown).
std::vector<rk::nn::PartialShape> shapes_from_r(SEXP x, const char* what) {
  if (TYPEOF(x) != VECSXP) throw rk::TypeError(std::string(what) + " must be a list of integer vectors");
  std::vector<rk::nn::PartialShape> out;
  for (R_xlen_t i = 0; i < XLENGTH(x); ++i) {
    std::string w = std::string(what) + "[[" + std::to_string(i + 1) + "]]";
    rk::nn::PartialShape s = ints_from_r(VECTOR_ELT(x, i), w, true);
    for (int64_t d : s)
      if (d < -1) throw rk::ValueError(w + " must hold non-negative sizes or NA, got " + std::to_string(d));
    out.push_back(std::move(s));
  }
  return out;
}

SEXP shape_to_r(const rk::nn::PartialShape& s) {
  Rcpp::IntegerVector v(s.size());
  for (size_t i = 0; i < s.size(); ++i)
    v[i] = s[i] < 0 || s[i] > INT32_MAX ? NA_INTEGER : static_cast<int>(s[i]);
  return v;
}

// Tensors from a list of rkeras_tensor (R arrays are converted to `array_dtype`).
std::vector<rk::Tensor> tensors_from_r(SEXP x, const char* what, const std::string& array_dtype = "float32") {
  if (TYPEOF(x) != VECSXP || Rf_isFrame(x))
    throw rk::TypeError(std::string(what) + " must be a list of rkeras_tensor, got " + r_class_of(x));
  std::vector<rk::Tensor> out;
  out.reserve(static_cast<size_t>(XLENGTH(x)));
  for (R_xlen_t i = 0; i < XLENGTH(x); ++i) {
    SEXP e = VECTOR_ELT(x, i);
    std::string w = std::string(what) + "[[" + std::to_string(i + 1) + "]]";
    if (is_tensor(e)) out.push_back(tensor_ref(e, w.c_str()));
    else out.push_back(tensor_from_r(e, array_dtype));
  }
  return out;
}

SEXP tensors_to_r(const std::vector<rk::Tensor>& ts) {
  Rcpp::List out(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) out[i] = wrap_tensor(ts[i]);
  return out;
}

// Outputs as an R list of tensors, with the activity-regularisation losses the layers added (if any)
// as attribute "losses" (a list of scalar tensors).
SEXP outputs_to_r(const std::vector<rk::Tensor>& outs, const rk::nn::Context& ctx) {
  Rcpp::List out(tensors_to_r(outs));
  if (!ctx.extra_losses.empty()) out.attr("losses") = tensors_to_r(ctx.extra_losses);
  return out;
}

// The stream for a call: a fresh one for an explicit seed, else the engine's default stream
// (seeded from R's RNG by the R wrappers).
struct CallRng {
  rk::Generator own;
  rk::Generator* gen;
  explicit CallRng(SEXP seed) : own(0), gen(&rk::default_generator()) {
    if (Rf_isNull(seed)) return;
    if ((TYPEOF(seed) != REALSXP && TYPEOF(seed) != INTSXP) || XLENGTH(seed) != 1)
      throw rk::TypeError("seed must be NULL or a single number");
    double v = Rf_asReal(seed);
    if (std::isnan(v) || v < 0 || v != std::floor(v)) throw rk::ValueError("seed must be a non-negative whole number");
    own.seed(static_cast<uint64_t>(v));
    gen = &own;
  }
};

bool flag_from_r(SEXP x, const char* what) {
  if (TYPEOF(x) != LGLSXP || XLENGTH(x) != 1 || LOGICAL(x)[0] == NA_LOGICAL)
    throw rk::TypeError(std::string(what) + " must be TRUE or FALSE");
  return LOGICAL(x)[0] != 0;
}


SEXP wrap_layer(std::unique_ptr<rk::nn::Layer> l) {
  return wrap_shared<const rk::nn::Layer>(std::shared_ptr<const rk::nn::Layer>(std::move(l)), "rkeras_engine_layer");
}

// Converts what an R layer function returned: a tensor, an R array, or a list of those.
std::vector<rk::Tensor> external_result(SEXP res, const std::string& layer_name, rk::DType dtype) {
  const std::string dt = rk::dtype_name(dtype);
  auto one = [&](SEXP e) -> rk::Tensor {
    if (is_tensor(e)) return tensor_ref(e, "the layer function's result");
    if ((TYPEOF(e) == REALSXP || TYPEOF(e) == INTSXP || TYPEOF(e) == LGLSXP) && !Rf_isFactor(e))
      return tensor_from_r(e, dt);
    throw rk::TypeError("the function of layer \"" + layer_name +
                        "\" must return a tensor, an array or a list of those, got " + r_class_of(e));
  };
  std::vector<rk::Tensor> out;
  if (TYPEOF(res) == VECSXP && !Rf_isFrame(res)) {
    for (R_xlen_t i = 0; i < XLENGTH(res); ++i) out.push_back(one(VECTOR_ELT(res, i)));
  } else {
    out.push_back(one(res));
  }
  return out;
}

}  // namespace

}  // namespace rkglue

using rkglue::guard;

/// Creates the engine layer of Keras class `kind` with settings `attrs` (its Keras config).
// [[Rcpp::export(rng = false)]]
SEXP rk_layer_new(std::string kind, std::string name, SEXP attrs) {
  return guard([&] { return rkglue::wrap_layer(rk::nn::make_layer(kind, name, rkglue::attrs_from_r(attrs))); });
}

/// An engine layer whose forward calls the R function `fn(inputs, training)`; inputs is a list of
/// rkeras_tensor sharing the engine's tensors (so autograd flows through R ops); fn returns a tensor
/// (or R array) or a list of them. `output_shapes`: list of shapes (NA = None), NULL = like the inputs.
// [[Rcpp::export(rng = false)]]
SEXP rk_layer_external(std::string name, Rcpp::Function fn, SEXP output_shapes, int num_inputs) {
  return guard([&] {
    std::vector<rk::nn::PartialShape> shapes;
    if (!Rf_isNull(output_shapes)) shapes = rkglue::shapes_from_r(output_shapes, "output_shapes");
    rk::nn::ExternalFn f = [fn, name](const std::vector<rk::Tensor>& in, bool training) {
      Rcpp::List args(in.size());
      for (size_t i = 0; i < in.size(); ++i) args[i] = rkglue::wrap_tensor(in[i]);
      // An R error here arrives as Rcpp::LongjumpException and unwinds the engine's frames.
      Rcpp::RObject res = fn(args, Rcpp::LogicalVector::create(training));
      rk::DType dt = !in.empty() && rk::is_floating(in[0].dtype()) ? in[0].dtype() : rk::DType::Float32;
      return rkglue::external_result(res, name, dt);
    };
    return rkglue::wrap_layer(rk::nn::make_external_layer(name, std::move(f), std::move(shapes), num_inputs));
  });
}

/// list(kind, name, num_inputs) of an engine layer.
// [[Rcpp::export(rng = false)]]
SEXP rk_layer_info(SEXP layer) {
  return guard([&]() -> SEXP {
    const auto& l = rkglue::layer_ref(layer);
    return Rcpp::List::create(Rcpp::Named("kind") = l->kind(), Rcpp::Named("name") = l->name(),
                              Rcpp::Named("num_inputs") = l->num_inputs());
  });
}

/// Output shapes (list of integer vectors, NA = None) for the given input shapes.
// [[Rcpp::export(rng = false)]]
SEXP rk_layer_output_shapes(SEXP layer, SEXP input_shapes) {
  return guard([&]() -> SEXP {
    auto out = rkglue::layer_ref(layer)->output_shapes(rkglue::shapes_from_r(input_shapes, "input_shapes"));
    Rcpp::List res(out.size());
    for (size_t i = 0; i < out.size(); ++i) res[i] = rkglue::shape_to_r(out[i]);
    return res;
  });
}

/// The weights the layer needs for these input shapes: list of list(name, shape, trainable), Keras order.
// [[Rcpp::export(rng = false)]]
SEXP rk_layer_weight_specs(SEXP layer, SEXP input_shapes) {
  return guard([&]() -> SEXP {
    auto specs = rkglue::layer_ref(layer)->weight_specs(rkglue::shapes_from_r(input_shapes, "input_shapes"));
    Rcpp::List res(specs.size());
    for (size_t i = 0; i < specs.size(); ++i)
      res[i] = Rcpp::List::create(Rcpp::Named("name") = specs[i].name,
                                  Rcpp::Named("shape") = rkglue::shape_to_r(specs[i].shape),
                                  Rcpp::Named("trainable") = specs[i].trainable);
    return res;
  });
}

/// Eager call of a layer on tensors (R arrays become float32); records autograd where enabled.
/// Shapes are checked first (Keras's messages). Returns a list of tensors (attr "losses" if any).
// [[Rcpp::export(rng = false)]]
SEXP rk_layer_call(SEXP layer, SEXP inputs, SEXP weights, SEXP training, SEXP seed) {
  return guard([&]() -> SEXP {
    const auto& l = rkglue::layer_ref(layer);
    std::vector<rk::Tensor> xs = rkglue::tensors_from_r(inputs, "inputs");
    std::vector<rk::Tensor> ws = Rf_isNull(weights) ? std::vector<rk::Tensor>{} : rkglue::tensors_from_r(weights, "weights");
    std::vector<rk::nn::PartialShape> shapes;
    for (const auto& x : xs) shapes.push_back(x.shape().dims());
    l->output_shapes(shapes);
    rkglue::CallRng rng(seed);
    rk::nn::Context ctx;
    ctx.training = rkglue::flag_from_r(training, "training");
    ctx.rng = rng.gen;
    std::vector<rk::Tensor> out = l->forward(xs, ws, ctx);
    // Keras updates layer state (moving statistics) in an eager training call too.
    rk::nn::apply_state_updates(ctx, ws);
    return rkglue::outputs_to_r(out, ctx);
  });
}

/// Builds (and validates) an engine graph. nodes: list of list(layer, inputs, weights, outputs) with
/// 0-based ids; weights: list of rkeras_tensor (shared, not copied); trainable: logical per weight.
// [[Rcpp::export(rng = false)]]
SEXP rk_graph_new(SEXP nodes, SEXP weights, SEXP trainable, SEXP input_ids, SEXP output_ids, int num_values) {
  return guard([&] {
    auto g = std::make_shared<rk::nn::Graph>();
    if (TYPEOF(nodes) != VECSXP) throw rk::TypeError("nodes must be a list");
    for (R_xlen_t i = 0; i < XLENGTH(nodes); ++i) {
      SEXP n = VECTOR_ELT(nodes, i);
      std::string w = "nodes[[" + std::to_string(i + 1) + "]]";
      if (TYPEOF(n) != VECSXP) throw rk::TypeError(w + " must be a list(layer, inputs, weights, outputs)");
      Rcpp::List node(n);
      auto field = [&](const char* f) -> SEXP {
        if (!node.containsElementNamed(f)) throw rk::ValueError(w + " has no element `" + f + "`");
        return node[f];
      };
      rk::nn::GraphNode gn;
      gn.layer = rkglue::layer_ref(field("layer"), (w + "$layer").c_str());
      gn.inputs = rkglue::ids_from_r(field("inputs"), w + "$inputs");
      gn.weights = rkglue::ids_from_r(field("weights"), w + "$weights");
      gn.outputs = rkglue::ids_from_r(field("outputs"), w + "$outputs");
      g->nodes.push_back(std::move(gn));
    }
    g->weights = rkglue::tensors_from_r(weights, "weights");
    if (TYPEOF(trainable) != LGLSXP) throw rk::TypeError("trainable must be a logical vector");
    for (R_xlen_t i = 0; i < XLENGTH(trainable); ++i) {
      if (LOGICAL(trainable)[i] == NA_LOGICAL) throw rk::ValueError("trainable must not contain NA");
      g->trainable.push_back(LOGICAL(trainable)[i] != 0);
    }
    g->input_ids = rkglue::ids_from_r(input_ids, "input_ids");
    g->output_ids = rkglue::ids_from_r(output_ids, "output_ids");
    g->num_values = num_values;
    g->validate();
    return rkglue::wrap_shared<rk::nn::Graph>(std::move(g), "rkeras_engine_graph");
  });
}

/// Runs the graph on tensors (one per model input); records autograd where enabled.
// [[Rcpp::export(rng = false)]]
SEXP rk_graph_forward(SEXP graph, SEXP inputs, SEXP training, SEXP seed) {
  return guard([&]() -> SEXP {
    const auto& g = rkglue::graph_ref(graph);
    std::vector<rk::Tensor> xs = rkglue::tensors_from_r(inputs, "inputs");
    rkglue::CallRng rng(seed);
    rk::nn::Context ctx;
    ctx.training = rkglue::flag_from_r(training, "training");
    ctx.rng = rng.gen;
    std::vector<rk::Tensor> out = g->forward(xs, ctx);
    rk::nn::apply_state_updates(ctx, g->weights);
    return rkglue::outputs_to_r(out, ctx);
  });
}

namespace {

// Writes batch output `t` (rows [start, start + len) of an output with `n` rows) into the R array
// `dst` of dims (n, rest...), column-major; `col` maps a row-major index of `rest` to R's offset.
template <typename T>
void write_rows(const T* src, int64_t len, int64_t start, int64_t n, const std::vector<int64_t>& col, double* dst) {
  const int64_t per_row = static_cast<int64_t>(col.size());
  for (int64_t r = 0; r < per_row; ++r) {
    double* d = dst + col[static_cast<size_t>(r)] * n + start;
    const T* s = src + r;
    for (int64_t b = 0; b < len; ++b) d[b] = static_cast<double>(s[b * per_row]);
  }
}

}  // namespace

/// predict(): inputs hold ALL rows (tensors or R arrays, converted once); batches of `batch_size`
/// rows are sliced in C++, run without autograd, and written straight into one R double array per
/// output, with R dims = the output's engine shape (as.array's convention).
// [[Rcpp::export(rng = false)]]
SEXP rk_graph_predict(SEXP graph, SEXP inputs, int batch_size) {
  return guard([&]() -> SEXP {
    const auto& g = rkglue::graph_ref(graph);
    std::vector<rk::Tensor> xs = rkglue::tensors_from_r(inputs, "inputs");
    if (xs.size() != g->input_ids.size())
      throw rk::ValueError("the model expects " + std::to_string(g->input_ids.size()) + " input(s), but received " +
                           std::to_string(xs.size()));
    if (batch_size < 1 || batch_size == NA_INTEGER)
      throw rk::ValueError("batch_size must be a positive integer, got " + std::to_string(batch_size));
    int64_t n = -1;
    for (size_t k = 0; k < xs.size(); ++k) {
      if (xs[k].rank() < 1) throw rk::ValueError("input " + std::to_string(k + 1) + " has no batch axis (it is a scalar)");
      if (n >= 0 && xs[k].size(0) != n)
        throw rk::ValueError("all inputs must have the same number of rows; input 1 has " + std::to_string(n) +
                             " and input " + std::to_string(k + 1) + " has " + std::to_string(xs[k].size(0)));
      n = xs[k].size(0);
    }
    if (n <= 0) throw rk::ValueError("predict() needs at least one row of input data, got 0 rows");

    rk::autograd::NoGradGuard no_grad;
    rk::Generator gen(0);  // unused in inference; a stream so no layer reaches for the global one
    rk::nn::Context ctx;
    ctx.rng = &gen;
    const size_t n_out = g->output_ids.size();
    Rcpp::List result(n_out);  // protects the arrays as they are filled
    std::vector<double*> dst(n_out, nullptr);
    std::vector<std::vector<int64_t>> col(n_out);
    std::vector<rk::Shape> row_shape(n_out);
    std::vector<rk::Tensor> batch(xs.size());

    for (int64_t start = 0; start < n; start += batch_size) {
      const int64_t len = std::min<int64_t>(batch_size, n - start);
      for (size_t k = 0; k < xs.size(); ++k) {
        if (len == n) {
          batch[k] = xs[k];
          continue;
        }
        // Rows [start, start + len) of a contiguous row-major tensor are contiguous: a view into the
        // same storage (inference only reads its inputs), not a copy of every batch.
        std::vector<int64_t> dims = xs[k].shape().dims();
        const size_t row_bytes = xs[k].nbytes() / static_cast<size_t>(dims[0]);
        dims[0] = len;
        auto impl = std::make_shared<rk::TensorImpl>();
        impl->shape = rk::Shape(dims);
        impl->dtype = xs[k].dtype();
        impl->storage = xs[k].impl()->storage;
        impl->offset_bytes = xs[k].impl()->offset_bytes + static_cast<size_t>(start) * row_bytes;
        batch[k] = rk::Tensor(std::move(impl));
      }
      ctx.extra_losses.clear();
      std::vector<rk::Tensor> outs = g->forward(batch, ctx);
      for (size_t o = 0; o < n_out; ++o) {
        // Outputs of a model on the GPU are read on the host, one batch at a time.
        rk::Tensor t = rk::ops::to_device(outs[o], rk::cpu_device());
        if (t.rank() < 1 || t.size(0) != len)
          throw rk::ValueError("output " + std::to_string(o + 1) + " has shape " + t.shape().str() +
                               ", which does not keep the batch axis of a batch of " + std::to_string(len) + " rows");
        std::vector<int64_t> rest(t.shape().dims().begin() + 1, t.shape().dims().end());
        if (!dst[o]) {
          // First batch: allocate the whole (n, rest...) array and the row-major -> column-major map.
          row_shape[o] = rk::Shape(rest);
          const int64_t per_row = row_shape[o].numel();
          Rcpp::NumericVector arr(static_cast<R_xlen_t>(n * per_row));
          Rcpp::IntegerVector dims(static_cast<R_xlen_t>(rest.size() + 1));
          dims[0] = static_cast<int>(n);
          for (size_t i = 0; i < rest.size(); ++i) dims[static_cast<R_xlen_t>(i + 1)] = static_cast<int>(rest[i]);
          arr.attr("dim") = dims;
          result[o] = arr;
          dst[o] = REAL(VECTOR_ELT(result, static_cast<R_xlen_t>(o)));
          std::vector<int64_t>& c = col[o];
          c.resize(static_cast<size_t>(per_row));
          std::vector<int64_t> idx(rest.size(), 0);
          for (int64_t r = 0; r < per_row; ++r) {
            int64_t off = 0, mult = 1;
            for (size_t i = 0; i < rest.size(); ++i) {
              off += idx[i] * mult;
              mult *= rest[i];
            }
            c[static_cast<size_t>(r)] = off;
            for (size_t i = rest.size(); i-- > 0;) {  // row-major increment
              if (++idx[i] < rest[i]) break;
              idx[i] = 0;
            }
          }
        } else if (rk::Shape(rest) != row_shape[o]) {
          throw rk::ValueError("output " + std::to_string(o + 1) + " changed shape between batches: " +
                               row_shape[o].str() + " then " + rk::Shape(rest).str());
        }
        if (t.dtype() == rk::DType::Float32) {
          write_rows(t.data<float>(), len, start, n, col[o], dst[o]);
        } else {
          rk::Tensor d = t.dtype() == rk::DType::Float64 ? t : rk::ops::cast(t, rk::DType::Float64);
          write_rows(d.data<double>(), len, start, n, col[o], dst[o]);
        }
      }
      Rcpp::checkUserInterrupt();  // Ctrl-C between batches (throws; unwinds cleanly)
    }
    return result;
  });
}
