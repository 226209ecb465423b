// Glue for losses and metrics: direct loss/metric values through the engine, engine metric
// objects (stateful, as R external pointers), and R functions / R metric objects wrapped so
// that the engine trainer can call them inside fit().
#include "rcpp_metrics.h"

#include <string>
#include <vector>

#include "nn/trainer.h"
#include "ops/ops.h"
#include "rcpp_glue.h"
#include "rcpp_nn.h"

using rkglue::guard;
using rkglue::tensor_ref;
using rkglue::wrap_tensor;

namespace rkglue {

namespace {

const char* kMetricClass = "rkeras_engine_metric";

SEXP method_of(SEXP obj, const char* name) {
  SEXP f = R_NilValue;
  if (TYPEOF(obj) == ENVSXP) {
    f = Rf_findVarInFrame(obj, Rf_install(name));
    if (f == R_UnboundValue) f = R_NilValue;
  } else if (TYPEOF(obj) == VECSXP) {
    SEXP names = Rf_getAttrib(obj, R_NamesSymbol);
    for (R_xlen_t i = 0; !Rf_isNull(names) && i < XLENGTH(obj); ++i)
      if (std::string(CHAR(STRING_ELT(names, i))) == name) f = VECTOR_ELT(obj, i);
  }
  if (!Rf_isFunction(f)) throw rk::TypeError(std::string("the metric object has no `") + name + "()` method");
  return f;
}

// A result from R (tensor or numeric) as host doubles.
std::vector<double> doubles_from_r(SEXP res, const std::string& name) {
  if (is_tensor(res)) {
    rk::Tensor t = rk::ops::to_device(rk::ops::cast(tensor_ref(res).detach(), rk::DType::Float64), rk::cpu_device());
    const double* d = t.data<double>();
    return std::vector<double>(d, d + t.numel());
  }
  if ((TYPEOF(res) == REALSXP || TYPEOF(res) == INTSXP || TYPEOF(res) == LGLSXP) && XLENGTH(res) > 0) {
    Rcpp::NumericVector v(res);
    return std::vector<double>(v.begin(), v.end());
  }
  throw rk::TypeError("metric \"" + name + "\": result() must return a number or a tensor");
}

class RMetric : public rk::nn::Metric {
 public:
  RMetric(SEXP obj, std::string name)
      : update_(method_of(obj, "update_state")), result_(method_of(obj, "result")),
        reset_(method_of(obj, "reset_state")), name_(std::move(name)) {}
  std::function<void()> prepare(const rk::Tensor& t, const rk::Tensor& p, const rk::Tensor& sw) override {
    rk::Tensor tt = t.detach(), pp = p.detach(), ww = sw.defined() ? sw.detach() : rk::Tensor();
    return [this, tt, pp, ww]() {
      update_(wrap_tensor(tt), wrap_tensor(pp), ww.defined() ? Rcpp::RObject(wrap_tensor(ww)) : Rcpp::RObject(R_NilValue));
    };
  }
  std::vector<double> result() const override { return doubles_from_r(result_(), name_); }
  void reset() override { reset_(); }

 private:
  Rcpp::Function update_, result_, reset_;
  std::string name_;
};

const std::shared_ptr<rk::nn::Metric>& metric_ref(SEXP x) {
  if (TYPEOF(x) != EXTPTRSXP || !Rf_inherits(x, kMetricClass))
    throw rk::TypeError("metric must be an rkeras_engine_metric");
  auto* h = static_cast<std::shared_ptr<rk::nn::Metric>*>(R_ExternalPtrAddr(x));
  if (!h || !*h) throw rk::ValueError("the metric's engine state is gone (e.g. saved and reloaded); recreate it");
  return *h;
}

rk::Tensor optional(SEXP x, const char* what) { return Rf_isNull(x) ? rk::Tensor() : tensor_ref(x, what); }

}  // namespace

std::function<rk::Tensor(const rk::Tensor&, const rk::Tensor&)> r_loss_function(SEXP fn, const std::string& name) {
  Rcpp::Function f(fn);
  return [f, name](const rk::Tensor& t, const rk::Tensor& p) {
    // An R error here arrives as Rcpp::LongjumpException and unwinds the engine's frames.
    Rcpp::RObject res = f(wrap_tensor(t), wrap_tensor(p));
    if (!is_tensor(res))
      throw rk::TypeError("loss \"" + name +
                          "\": the loss function must return a tensor computed from y_pred with tensor operations "
                          "(so it can be differentiated), got an object of type " +
                          std::string(Rf_type2char(TYPEOF(res))));
    return tensor_ref(res);
  };
}

std::function<rk::Tensor(const rk::Tensor&, const rk::Tensor&)> r_metric_function(SEXP fn, const std::string& name) {
  Rcpp::Function f(fn);
  return [f, name](const rk::Tensor& t, const rk::Tensor& p) {
    Rcpp::RObject res = f(wrap_tensor(t), wrap_tensor(p));
    if (is_tensor(res)) return tensor_ref(res);
    if ((TYPEOF(res) == REALSXP || TYPEOF(res) == INTSXP || TYPEOF(res) == LGLSXP) && !Rf_isFactor(res))
      return tensor_from_r(res, "float64");
    throw rk::TypeError("metric \"" + name + "\": the metric function must return a tensor or a numeric array");
  };
}

std::shared_ptr<rk::nn::Metric> r_metric_object(SEXP methods, const std::string& name) {
  return std::make_shared<RMetric>(methods, name);
}

}  // namespace rkglue

/// Per-sample values of engine loss `kind` (attrs: its settings) for tensors y_true, y_pred.
// [[Rcpp::export(rng = false)]]
SEXP rk_engine_loss_values(std::string kind, SEXP attrs, SEXP y_true, SEXP y_pred) {
  return guard([&]() -> SEXP {
    rk::nn::LossSpec spec{kind, rkglue::attrs_from_r(attrs, "attrs"), 1.0, {}};
    return wrap_tensor(rk::nn::loss_per_sample(spec, tensor_ref(y_true, "y_true"), tensor_ref(y_pred, "y_pred")));
  });
}

/// Keras's reduction of loss values (tensor) with sample weights (tensor or NULL); `kind` names the
/// loss when its values carry a Keras mask (circle).
// [[Rcpp::export(rng = false)]]
SEXP rk_engine_loss_reduce(SEXP values, SEXP sample_weight, std::string reduction, std::string kind = "") {
  return guard([&]() -> SEXP {
    const rk::Tensor& v = tensor_ref(values, "values");
    return wrap_tensor(rk::nn::reduce_loss(v, rkglue::optional(sample_weight, "sample_weight"), reduction,
                                           rk::nn::loss_output_mask(kind, v)));
  });
}

/// Per-sample values of mean-wrapper metric `kind` for tensors y_true, y_pred.
// [[Rcpp::export(rng = false)]]
SEXP rk_engine_metric_values(std::string kind, SEXP attrs, SEXP y_true, SEXP y_pred) {
  return guard([&]() -> SEXP {
    rk::nn::MetricSpec spec;
    spec.kind = kind;
    spec.name = kind;
    spec.attrs = rkglue::attrs_from_r(attrs, "attrs");
    return wrap_tensor(rk::nn::metric_per_sample(spec, tensor_ref(y_true, "y_true"), tensor_ref(y_pred, "y_pred")));
  });
}

/// A stateful engine metric of `kind` named `name` with settings `attrs`; `fn` (or NULL) is an R
/// function(y_true, y_pred) giving per-sample values for kind "custom".
// [[Rcpp::export(rng = false)]]
SEXP rk_engine_metric_new(std::string kind, std::string name, SEXP attrs, SEXP fn) {
  return guard([&]() -> SEXP {
    rk::nn::MetricSpec spec;
    spec.kind = kind;
    spec.name = name;
    spec.attrs = rkglue::attrs_from_r(attrs, "attrs");
    if (!Rf_isNull(fn)) spec.fn = rkglue::r_metric_function(fn, name);
    return rkglue::wrap_shared(rk::nn::make_metric(spec), rkglue::kMetricClass);
  });
}

/// Updates an engine metric with tensors y_true, y_pred and sample_weight (or NULL).
// [[Rcpp::export(rng = false)]]
SEXP rk_engine_metric_update(SEXP metric, SEXP y_true, SEXP y_pred, SEXP sample_weight) {
  return guard([&]() -> SEXP {
    rkglue::metric_ref(metric)->update(tensor_ref(y_true, "y_true"), tensor_ref(y_pred, "y_pred"),
                                       rkglue::optional(sample_weight, "sample_weight"));
    return R_NilValue;
  });
}

/// The current value(s) of an engine metric (numeric vector).
// [[Rcpp::export(rng = false)]]
SEXP rk_engine_metric_result(SEXP metric) {
  return guard([&]() -> SEXP { return Rcpp::wrap(rkglue::metric_ref(metric)->result()); });
}

/// Resets an engine metric's state.
// [[Rcpp::export(rng = false)]]
SEXP rk_engine_metric_reset(SEXP metric) {
  return guard([&]() -> SEXP {
    rkglue::metric_ref(metric)->reset();
    return R_NilValue;
  });
}
