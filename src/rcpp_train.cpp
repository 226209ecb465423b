// Glue for training: engine optimizers and trainers as R external pointers, one call per batch
// (train_on_batch / test_on_batch) or per epoch (fit), with R called back only for progress and
// callbacks (throttled) and Ctrl-C honoured at step boundaries.
#include "rcpp_glue.h"
#include "rcpp_nn.h"
#include "rcpp_metrics.h"

#include <R_ext/Utils.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "nn/data_pipeline.h"
#include "nn/graph.h"
#include "nn/trainer.h"
#include "ops/ops.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"

using rkglue::guard;
using rkglue::tensor_ref;
using rkglue::wrap_tensor;
using rkglue::wrap_shared;
using rkglue::attrs_from_r;

namespace {

// ---------------------------------------------------------------------------- external pointers
// Each object is a heap-allocated shared_ptr, so the trainer can share the graph and optimizer.
// Graphs come from rcpp_nn.cpp with the same layout (class "rkeras_engine_graph").


template <typename T>
const std::shared_ptr<T>& shared_ref(SEXP x, const char* cls, const char* what) {
  if (TYPEOF(x) != EXTPTRSXP || !Rf_inherits(x, cls))
    throw rk::TypeError(std::string(what) + " must be an object of class " + cls);
  auto* h = static_cast<std::shared_ptr<T>*>(R_ExternalPtrAddr(x));
  if (!h || !*h)
    throw rk::ValueError(std::string(what) + " is no longer valid (engine objects do not survive saveRDS()/readRDS())");
  return *h;
}

const char* kOptClass = "rkeras_engine_optimizer";
const char* kTrainerClass = "rkeras_engine_trainer";
const char* kGraphClass = "rkeras_engine_graph";

// ----------------------------------------------------------------------------------- conversions

SEXP list_elt(SEXP list, const char* name) {
  SEXP names = Rf_getAttrib(list, R_NamesSymbol);
  if (Rf_isNull(names)) return R_NilValue;
  for (R_xlen_t i = 0; i < XLENGTH(list); ++i)
    if (std::string(CHAR(STRING_ELT(names, i))) == name) return VECTOR_ELT(list, i);
  return R_NilValue;
}

std::string str_elt(SEXP list, const char* name, const std::string& def = "") {
  SEXP v = list_elt(list, name);
  if (Rf_isNull(v)) return def;
  if (TYPEOF(v) != STRSXP || XLENGTH(v) != 1) throw rk::TypeError(std::string("`") + name + "` must be a single string");
  return STRING_ELT(v, 0) == NA_STRING ? def : std::string(CHAR(STRING_ELT(v, 0)));
}

double num_elt(SEXP list, const char* name, double def) {
  SEXP v = list_elt(list, name);
  if (Rf_isNull(v)) return def;
  if (!Rf_isNumeric(v) && !Rf_isLogical(v)) throw rk::TypeError(std::string("`") + name + "` must be a number");
  if (XLENGTH(v) != 1) throw rk::TypeError(std::string("`") + name + "` must be a single number");
  return Rf_asReal(v);
}

void check_list(SEXP x, const char* what) {
  if (TYPEOF(x) != VECSXP) throw rk::TypeError(std::string(what) + " must be a list");
}

std::vector<rk::Tensor> tensors_from_r(SEXP x, const char* what, bool allow_null = false) {
  check_list(x, what);
  std::vector<rk::Tensor> out;
  for (R_xlen_t i = 0; i < XLENGTH(x); ++i) {
    SEXP e = VECTOR_ELT(x, i);
    if (allow_null && Rf_isNull(e)) {
      out.emplace_back();
      continue;
    }
    out.push_back(tensor_ref(e, what));
  }
  return out;
}

rk::Tensor optional_tensor(SEXP x, const char* what) {
  return Rf_isNull(x) ? rk::Tensor() : tensor_ref(x, what);
}

SEXP logs_to_r(const std::vector<rk::nn::LogEntry>& logs) {
  Rcpp::NumericVector v(logs.size());
  Rcpp::CharacterVector names(logs.size());
  for (size_t i = 0; i < logs.size(); ++i) {
    v[i] = logs[i].value;
    names[i] = logs[i].name;
  }
  v.attr("names") = names;
  return v;
}

uint64_t seed_from_r(SEXP seed) {
  if (Rf_isNull(seed)) return rk::default_generator().seed_value() + rk::default_generator().offset();
  double s = Rf_asReal(seed);
  if (!std::isfinite(s)) throw rk::ValueError("`seed` must be a finite number");
  return static_cast<uint64_t>(static_cast<int64_t>(s));
}

// Interrupt check that cannot longjmp over C++ frames: R_CheckUserInterrupt runs inside
// R_ToplevelExec, which catches the interrupt and reports it as a FALSE return.
void check_interrupt_fn(void*) { R_CheckUserInterrupt(); }
bool user_interrupted() { return R_ToplevelExec(check_interrupt_fn, nullptr) == FALSE; }

// Throttled calls of the R function on_batch(step, logs) between steps, and Ctrl-C checks.
// The R function is called after every step when every_seconds <= 0; otherwise at most every
// every_seconds, after the last step (when `total` is known) and when the loss first turns
// non-finite (so callback_terminate_on_nan can name the step). Returns false to stop.
class StepReporter {
 public:
  /// pass_more: call on_batch(step, logs, more) rather than on_batch(step, logs).
  StepReporter(SEXP on_batch, double every_seconds, int64_t total, bool pass_more = true)
      : fn_(on_batch), every_(every_seconds), total_(total), pass_more_(pass_more), last_cb_(clock::now()),
        last_check_(clock::now()) {
    if (!Rf_isNull(fn_) && !Rf_isFunction(fn_)) throw rk::TypeError("on_batch must be a function or NULL");
  }
  bool operator()(int64_t step, const std::vector<rk::nn::LogEntry>& logs, bool more) {
    const auto now = clock::now();
    const bool last = step == total_ || !more;
    // Ctrl-C: checked at most every 50 ms (the check itself costs about a microsecond).
    if (std::chrono::duration<double>(now - last_check_).count() >= 0.05 || last) {
      last_check_ = now;
      // The step that just ended still gets its batch-end call (callbacks see every completed
      // step); the loop stops after it.
      if (user_interrupted()) interrupted = true;
    }
    if (Rf_isNull(fn_)) return !interrupted;
    bool force = last || interrupted;
    if (!nonfinite_seen_ && !logs.empty() && !std::isfinite(logs[0].value)) force = nonfinite_seen_ = true;
    if (!force && every_ > 0 && std::chrono::duration<double>(now - last_cb_).count() < every_) return true;
    last_cb_ = now;
    Rcpp::Function f(fn_);
    SEXP res = pass_more_ ? f(Rcpp::wrap(static_cast<int>(step)), logs_to_r(logs), Rcpp::wrap(more))
                          : f(Rcpp::wrap(static_cast<int>(step)), logs_to_r(logs));
    return !interrupted && Rf_asLogical(res) == TRUE;
  }
  bool interrupted = false;

 private:
  using clock = std::chrono::steady_clock;
  SEXP fn_;
  double every_;
  int64_t total_;
  bool pass_more_;
  clock::time_point last_cb_, last_check_;
  bool nonfinite_seen_ = false;
};

// Where batches come from: an R function called once per batch (list(xs, ys, sw) of tensors; NULL
// = end of data; FALSE = interrupted while it ran), or in-memory tensors list(xs, ys, sw,
// batch_size) sliced in order without calling R.
class BatchSource {
 public:
  explicit BatchSource(SEXP source) : src_(source) {
    if (Rf_isFunction(source)) return;
    check_list(source, "source");
    x_ = tensors_from_r(list_elt(source, "xs"), "x");
    y_ = tensors_from_r(list_elt(source, "ys"), "y", true);
    sw_ = optional_tensor(list_elt(source, "sw"), "sample_weight");
    batch_ = static_cast<int64_t>(num_elt(source, "batch_size", 32));
    if (batch_ < 1) throw rk::ValueError("`batch_size` must be a positive integer, got " + std::to_string(batch_));
    if (x_.empty()) throw rk::ValueError("no inputs given");
    n_ = x_[0].rank() == 0 ? 1 : x_[0].size(0);
  }
  bool from_r() const { return Rf_isFunction(src_); }
  bool next(rk::nn::Batch& b) {
    if (from_r()) {
      Rcpp::Function f(src_);
      Rcpp::RObject res = f();
      if (res.isNULL()) {
        exhausted = true;
        return false;
      }
      if (TYPEOF(res) == LGLSXP) {
        interrupted = true;
        return false;
      }
      check_list(res, "a batch");
      b.xs = tensors_from_r(list_elt(res, "xs"), "x");
      b.ys = tensors_from_r(list_elt(res, "ys"), "y", true);
      b.sample_weight = optional_tensor(list_elt(res, "sw"), "sample_weight");
      return true;
    }
    if (start_ >= n_) {
      exhausted = true;
      return false;
    }
    const int64_t len = std::min<int64_t>(batch_, n_ - start_);
    rk::autograd::NoGradGuard ng;
    for (const auto& t : x_) b.xs.push_back(rows(t, start_, len));
    for (const auto& t : y_) b.ys.push_back(t.defined() ? rows(t, start_, len) : rk::Tensor());
    if (sw_.defined()) b.sample_weight = rows(sw_, start_, len);
    start_ += len;
    return true;
  }
  bool interrupted = false, exhausted = false;

 private:
  static rk::Tensor rows(const rk::Tensor& t, int64_t start, int64_t len) {
    std::vector<int64_t> s(static_cast<size_t>(t.rank()), 0), z(static_cast<size_t>(t.rank()), -1);
    s[0] = start;
    z[0] = len;
    return rk::ops::slice(t, s, z);
  }
  SEXP src_;
  std::vector<rk::Tensor> x_, y_;
  rk::Tensor sw_;
  int64_t batch_ = 32, n_ = 0, start_ = 0;
};

// True if running the graph calls back into R (layer_lambda and R activation functions are
// external "Lambda" layers); such a graph must run on R's thread.
bool graph_calls_r(const rk::nn::Graph& g) {
  for (const auto& node : g.nodes)
    if (node.layer && node.layer->kind() == "Lambda") return true;
  return false;
}

}  // namespace

// ------------------------------------------------------------------------------------- optimizers

/// Creates an engine optimizer of Keras kind `kind` ("sgd", "adam", "adamw", "rmsprop", "adagrad")
/// from `attrs` (learning_rate, the kind's hyper-parameters, clipnorm/clipvalue/global_clipnorm/
/// weight_decay with NA = off).
// [[Rcpp::export(rng = false)]]
SEXP rk_optimizer_new(std::string kind, SEXP attrs) {
  return guard([&]() -> SEXP {
    std::shared_ptr<rk::optim::Optimizer> opt = rk::optim::make_optimizer(kind, attrs_from_r(attrs, "attrs"));
    return wrap_shared(std::move(opt), kOptClass);
  });
}

/// list(learning_rate (current, a schedule's value at the current step), iterations (Keras's),
/// raw_iterations (apply() calls)) of an engine optimizer.
// [[Rcpp::export(rng = false)]]
SEXP rk_optimizer_get(SEXP opt) {
  return guard([&]() -> SEXP {
    const auto& o = shared_ref<rk::optim::Optimizer>(opt, kOptClass, "opt");
    return Rcpp::List::create(Rcpp::Named("learning_rate") = o->learning_rate(),
                              Rcpp::Named("iterations") = static_cast<double>(o->iterations()),
                              Rcpp::Named("raw_iterations") = static_cast<double>(o->raw_iterations()));
  });
}

/// Sets the learning rate of an engine optimizer.
// [[Rcpp::export(rng = false)]]
SEXP rk_optimizer_set_lr(SEXP opt, double lr) {
  return guard([&]() -> SEXP {
    if (!std::isfinite(lr) || lr < 0)
      throw rk::ValueError("`learning_rate` must be a non-negative number, got " + std::to_string(lr));
    shared_ref<rk::optim::Optimizer>(opt, kOptClass, "opt")->set_learning_rate(lr);
    return R_NilValue;
  });
}

/// Makes the learning rate of an engine optimizer the built-in schedule `kind` with `attrs` (Keras
/// arguments), evaluated in the engine at every step.
// [[Rcpp::export(rng = false)]]
SEXP rk_optimizer_set_schedule(SEXP opt, std::string kind, SEXP attrs) {
  return guard([&]() -> SEXP {
    const auto& o = shared_ref<rk::optim::Optimizer>(opt, kOptClass, "opt");
    rk::optim::LearningRateSchedule sched(kind, attrs_from_r(attrs, "attrs"));
    o->set_learning_rate_fn([sched](int64_t step) { return sched(static_cast<double>(step)); });
    return R_NilValue;
  });
}

/// Makes the learning rate of an engine optimizer the R function `fn(step)` (0-based step, a
/// double), called once per step from the training loop; it must return one number.
// [[Rcpp::export(rng = false)]]
SEXP rk_optimizer_set_lr_function(SEXP opt, SEXP fn) {
  return guard([&]() -> SEXP {
    const auto& o = shared_ref<rk::optim::Optimizer>(opt, kOptClass, "opt");
    if (!Rf_isFunction(fn)) throw rk::TypeError("`fn` must be a function");
    Rcpp::Function f(fn);
    o->set_learning_rate_fn([f](int64_t step) -> double {
      SEXP r = f(Rcpp::wrap(static_cast<double>(step)));
      if (!Rf_isNumeric(r) || XLENGTH(r) != 1)
        throw rk::TypeError("the learning-rate schedule must return a single number at step " + std::to_string(step));
      return Rf_asReal(r);
    });
    return R_NilValue;
  });
}

/// Values of the built-in schedule `kind` with `attrs` at each of `steps`.
// [[Rcpp::export(rng = false)]]
SEXP rk_schedule_values(std::string kind, SEXP attrs, Rcpp::NumericVector steps) {
  return guard([&]() -> SEXP {
    rk::optim::LearningRateSchedule sched(kind, attrs_from_r(attrs, "attrs"));
    Rcpp::NumericVector out(steps.size());
    for (R_xlen_t i = 0; i < steps.size(); ++i) out[i] = sched(steps[i]);
    return out;
  });
}

/// Sets the iteration count of an engine optimizer (restoring a saved optimizer state).
// [[Rcpp::export(rng = false)]]
SEXP rk_optimizer_set_iterations(SEXP opt, double iterations) {
  return guard([&]() -> SEXP {
    if (!std::isfinite(iterations) || iterations < 0)
      throw rk::ValueError("`iterations` must be a non-negative number");
    shared_ref<rk::optim::Optimizer>(opt, kOptClass, "opt")->set_iterations(static_cast<int64_t>(iterations));
    return R_NilValue;
  });
}

/// Slots per parameter (lists of rkeras_tensor sharing the optimizer's storage), in Keras's order.
// [[Rcpp::export(rng = false)]]
SEXP rk_optimizer_slots(SEXP opt) {
  return guard([&]() -> SEXP {
    const auto& o = shared_ref<rk::optim::Optimizer>(opt, kOptClass, "opt");
    // slots(i) is empty past the last parameter (and for rules without slots, e.g. plain SGD).
    std::vector<std::vector<rk::Tensor>> all;
    for (size_t i = 0; !o->slots(i).empty(); ++i) all.push_back(o->slots(i));
    Rcpp::List out(all.size());
    for (size_t i = 0; i < all.size(); ++i) {
      Rcpp::List li(all[i].size());
      for (size_t k = 0; k < all[i].size(); ++k) li[k] = wrap_tensor(all[i][k]);
      out[i] = li;
    }
    return out;
  });
}

/// Applies one optimizer step to `params` (list of rkeras_tensor, updated in place) with `grads`
/// (list of rkeras_tensor or NULL = no gradient); keras3's optimizer$apply().
// [[Rcpp::export(rng = false)]]
SEXP rk_optimizer_apply(SEXP opt, SEXP params, SEXP grads) {
  return guard([&]() -> SEXP {
    const auto& o = shared_ref<rk::optim::Optimizer>(opt, kOptClass, "opt");
    std::vector<rk::Tensor> p = tensors_from_r(params, "params");
    std::vector<rk::Tensor> g = tensors_from_r(grads, "grads", true);
    o->step(p, g);
    return R_NilValue;
  });
}

/// Drops the optimizer's slots and iteration count.
// [[Rcpp::export(rng = false)]]
SEXP rk_optimizer_reset(SEXP opt) {
  return guard([&]() -> SEXP {
    shared_ref<rk::optim::Optimizer>(opt, kOptClass, "opt")->reset();
    return R_NilValue;
  });
}

/// Applies constraint `kind` (max_norm, min_max_norm, non_neg, unit_norm; attrs with 0-based axis)
/// to tensor `w` in place.
// [[Rcpp::export(rng = false)]]
SEXP rk_engine_constraint_apply(std::string kind, SEXP attrs, SEXP w) {
  return guard([&]() -> SEXP {
    rk::Tensor t = tensor_ref(w, "w");
    rk::optim::apply_constraint(rk::optim::Constraint{kind, attrs_from_r(attrs, "attrs")}, t);
    return R_NilValue;
  });
}

// ---------------------------------------------------------------------------------------- trainer

/// Creates the engine trainer (compile()'s product) over `graph`.
/// losses: list (per output) of list(kind, attrs, weight) (kind NULL/"" = no loss);
/// metrics: list of list(kind, name, output (0-based), attrs, fn = R function or NULL, object = R metric
/// methods or NULL); losses may carry `fn` (an R loss function); regularizers: list of list(index, l1, l2);
/// constraints: list of list(index, kind, attrs). Weight indices are 0-based.
// [[Rcpp::export(rng = false)]]
SEXP rk_trainer_new(SEXP graph, SEXP losses, SEXP metrics, SEXP optimizer, SEXP regularizers, SEXP constraints) {
  return guard([&]() -> SEXP {
    auto g = shared_ref<rk::nn::Graph>(graph, kGraphClass, "graph");
    auto opt = shared_ref<rk::optim::Optimizer>(optimizer, kOptClass, "optimizer");
    std::vector<rk::nn::LossSpec> ls;
    check_list(losses, "losses");
    for (R_xlen_t i = 0; i < XLENGTH(losses); ++i) {
      SEXP e = VECTOR_ELT(losses, i);
      if (Rf_isNull(e)) {
        ls.push_back(rk::nn::LossSpec{});
        continue;
      }
      check_list(e, "losses[[i]]");
      ls.push_back(rk::nn::LossSpec{str_elt(e, "kind"), attrs_from_r(list_elt(e, "attrs"), "loss attrs"),
                                    num_elt(e, "weight", 1.0), {}});
      // A custom R loss function(y_true, y_pred), called by the engine with autograd on.
      SEXP fn = list_elt(e, "fn");
      if (!Rf_isNull(fn)) ls.back().fn = rkglue::r_loss_function(fn, str_elt(e, "name", "custom"));
    }
    std::vector<rk::nn::MetricSpec> ms;
    if (!Rf_isNull(metrics)) {
      check_list(metrics, "metrics");
      for (R_xlen_t i = 0; i < XLENGTH(metrics); ++i) {
        SEXP e = VECTOR_ELT(metrics, i);
        check_list(e, "metrics[[i]]");
        rk::nn::MetricSpec m;
        m.kind = str_elt(e, "kind");
        m.name = str_elt(e, "name");
        m.output = static_cast<int>(num_elt(e, "output", 0));
        m.attrs = attrs_from_r(list_elt(e, "attrs"), "metric attrs");
        // custom_metric(): per-sample values from an R function; Metric(): an R object with state.
        SEXP fn = list_elt(e, "fn");
        if (!Rf_isNull(fn)) m.fn = rkglue::r_metric_function(fn, m.name);
        SEXP obj = list_elt(e, "object");
        if (!Rf_isNull(obj)) m.external = rkglue::r_metric_object(obj, m.name);
        ms.push_back(std::move(m));
      }
    }
    std::vector<rk::nn::Regularizer> rs;
    if (!Rf_isNull(regularizers)) {
      check_list(regularizers, "regularizers");
      for (R_xlen_t i = 0; i < XLENGTH(regularizers); ++i) {
        SEXP e = VECTOR_ELT(regularizers, i);
        check_list(e, "regularizers[[i]]");
        rs.push_back(rk::nn::Regularizer{static_cast<int>(num_elt(e, "index", -1)), num_elt(e, "l1", 0),
                                         num_elt(e, "l2", 0)});
      }
    }
    std::vector<std::pair<int, rk::optim::Constraint>> cs;
    if (!Rf_isNull(constraints)) {
      check_list(constraints, "constraints");
      for (R_xlen_t i = 0; i < XLENGTH(constraints); ++i) {
        SEXP e = VECTOR_ELT(constraints, i);
        check_list(e, "constraints[[i]]");
        cs.emplace_back(static_cast<int>(num_elt(e, "index", -1)),
                        rk::optim::Constraint{str_elt(e, "kind"), attrs_from_r(list_elt(e, "attrs"), "constraint attrs")});
      }
    }
    auto tr = std::make_shared<rk::nn::Trainer>(g, std::move(ls), std::move(ms), opt, std::move(rs), std::move(cs));
    return wrap_shared(std::move(tr), kTrainerClass);
  });
}

/// One training step on a batch (xs, ys: lists of rkeras_tensor; sample_weight: tensor or NULL);
/// returns the logs accumulated since the last reset, this batch included.
// [[Rcpp::export(rng = false)]]
SEXP rk_trainer_train_batch(SEXP trainer, SEXP xs, SEXP ys, SEXP sample_weight, SEXP seed) {
  return guard([&]() -> SEXP {
    const auto& tr = shared_ref<rk::nn::Trainer>(trainer, kTrainerClass, "trainer");
    rk::Generator rng(seed_from_r(seed));
    tr->train_step(tensors_from_r(xs, "x"), tensors_from_r(ys, "y", true), optional_tensor(sample_weight, "sample_weight"),
                   rng);
    return logs_to_r(tr->logs());
  });
}

/// One evaluation step on a batch (no weight change); returns the accumulated logs.
// [[Rcpp::export(rng = false)]]
SEXP rk_trainer_test_batch(SEXP trainer, SEXP xs, SEXP ys, SEXP sample_weight) {
  return guard([&]() -> SEXP {
    const auto& tr = shared_ref<rk::nn::Trainer>(trainer, kTrainerClass, "trainer");
    tr->test_step(tensors_from_r(xs, "x"), tensors_from_r(ys, "y", true), optional_tensor(sample_weight, "sample_weight"));
    return logs_to_r(tr->logs());
  });
}

/// The logs accumulated since the last reset (named numeric).
// [[Rcpp::export(rng = false)]]
SEXP rk_trainer_logs(SEXP trainer) {
  return guard([&]() -> SEXP { return logs_to_r(shared_ref<rk::nn::Trainer>(trainer, kTrainerClass, "trainer")->logs()); });
}

/// Clears the loss and metric accumulators.
// [[Rcpp::export(rng = false)]]
SEXP rk_trainer_reset(SEXP trainer) {
  return guard([&]() -> SEXP {
    shared_ref<rk::nn::Trainer>(trainer, kTrainerClass, "trainer")->reset_metrics();
    return R_NilValue;
  });
}

/// One epoch of training in C++ over `batches` (list of integer vectors of 0-based rows into the full
/// xs/ys/sample_weight). Calls on_batch(step, logs) (TRUE to go on) after each batch when
/// every_seconds <= 0, else at most every `every_seconds`, after the last batch and when the loss
/// first turns non-finite; Ctrl-C stops at a step boundary. Returns list(logs, steps, interrupted).
// [[Rcpp::export(rng = false)]]
SEXP rk_trainer_fit_epoch(SEXP trainer, SEXP xs, SEXP ys, SEXP sample_weight, SEXP batches, SEXP seed,
                          SEXP on_batch, double every_seconds) {
  return guard([&]() -> SEXP {
    const auto& tr = shared_ref<rk::nn::Trainer>(trainer, kTrainerClass, "trainer");
    std::vector<rk::Tensor> x = tensors_from_r(xs, "x"), y = tensors_from_r(ys, "y", true);
    rk::Tensor sw = optional_tensor(sample_weight, "sample_weight");
    check_list(batches, "batches");
    std::vector<std::vector<int32_t>> b;
    b.reserve(static_cast<size_t>(XLENGTH(batches)));
    for (R_xlen_t i = 0; i < XLENGTH(batches); ++i) {
      SEXP e = VECTOR_ELT(batches, i);
      if (TYPEOF(e) == INTSXP) {
        b.emplace_back(INTEGER(e), INTEGER(e) + XLENGTH(e));
      } else if (TYPEOF(e) == REALSXP) {
        std::vector<int32_t> v(static_cast<size_t>(XLENGTH(e)));
        for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<int32_t>(REAL(e)[k]);
        b.push_back(std::move(v));
      } else {
        throw rk::TypeError("batches must be a list of integer vectors of 0-based row indices");
      }
      for (int32_t r : b.back())
        if (r == NA_INTEGER) throw rk::ValueError("batches contain NA row indices");
    }
    StepReporter report(on_batch, every_seconds, static_cast<int64_t>(b.size()), false);
    rk::Generator rng(seed_from_r(seed));
    int64_t steps = tr->run_epoch(x, y, sw, b, rng, [&](int64_t step, const std::vector<rk::nn::LogEntry>& logs) {
      return report(step, logs, step < static_cast<int64_t>(b.size()));
    });
    return Rcpp::List::create(Rcpp::Named("logs") = logs_to_r(tr->logs()),
                              Rcpp::Named("steps") = static_cast<int>(steps),
                              Rcpp::Named("interrupted") = report.interrupted);
  });
}

/// Training ("train") or evaluation ("test", metrics reset first) over the batches of `source`: an R
/// function returning list(xs, ys, sw) of tensors per call, NULL at the end of the data or FALSE
/// when interrupted (see BatchSource), or list(xs, ys, sw, batch_size) of in-memory tensors sliced in
/// order. on_batch(step, logs, more) also says whether another batch follows. With an R source the
/// step runs on a worker thread while R prepares the next batch (rk::nn::run_pipelined). At most
/// `max_steps` steps (< 0: until the data end); on_batch and every_seconds as for rk_trainer_fit_epoch. Returns list(logs, steps, interrupted, exhausted).
// [[Rcpp::export(rng = false)]]
SEXP rk_trainer_stream(SEXP trainer, std::string mode, SEXP source, SEXP on_batch, double every_seconds, SEXP seed,
                       double max_steps) {
  return guard([&]() -> SEXP {
    const auto& tr = shared_ref<rk::nn::Trainer>(trainer, kTrainerClass, "trainer");
    if (mode != "train" && mode != "test") throw rk::ValueError("mode must be \"train\" or \"test\", got \"" + mode + "\"");
    BatchSource src(source);
    const int64_t limit = std::isfinite(max_steps) && max_steps >= 0 ? static_cast<int64_t>(max_steps) : -1;
    StepReporter report(on_batch, every_seconds, limit);
    rk::Generator rng(seed_from_r(seed));
    if (mode == "test") tr->reset_metrics();
    std::function<void(const rk::nn::Batch&)> step;
    if (mode == "train") {
      step = [&](const rk::nn::Batch& b) { tr->train_step(b.xs, b.ys, b.sample_weight, rng); };
    } else {
      step = [&](const rk::nn::Batch& b) { tr->test_step(b.xs, b.ys, b.sample_weight); };
    }
    int64_t steps = rk::nn::run_pipelined(
        limit, [&](rk::nn::Batch& b) { return src.next(b); }, step,
        [&](int64_t k, bool more) { return report(k, tr->logs(), more) && !src.interrupted; },
        src.from_r() && !graph_calls_r(tr->graph()));
    return Rcpp::List::create(Rcpp::Named("logs") = logs_to_r(tr->logs()),
                              Rcpp::Named("steps") = static_cast<int>(steps),
                              Rcpp::Named("interrupted") = report.interrupted || src.interrupted,
                              Rcpp::Named("exhausted") = src.exhausted);
  });
}

/// predict() over the batches of `source` (as rk_trainer_stream; targets are ignored): inference
/// without autograd, the step on a worker thread while R prepares the next batch. Returns
/// list(outputs (one R double array per model output, batches concatenated along the first axis;
/// NULL when no batch came), steps, interrupted, exhausted). on_batch(step, logs) gets empty logs.
// [[Rcpp::export(rng = false)]]
SEXP rk_graph_predict_stream(SEXP graph, SEXP source, SEXP on_batch, double every_seconds, double max_steps) {
  return guard([&]() -> SEXP {
    const auto& g = rkglue::graph_ref(graph);
    BatchSource src(source);
    const int64_t limit = std::isfinite(max_steps) && max_steps >= 0 ? static_cast<int64_t>(max_steps) : -1;
    StepReporter report(on_batch, every_seconds, limit);
    std::vector<std::vector<rk::Tensor>> outs(g->output_ids.size());
    const std::vector<rk::nn::LogEntry> no_logs;
    int64_t steps = rk::nn::run_pipelined(
        limit, [&](rk::nn::Batch& b) { return src.next(b); },
        [&](const rk::nn::Batch& b) {
          if (b.xs.size() != g->input_ids.size())
            throw rk::ValueError("the model expects " + std::to_string(g->input_ids.size()) + " input(s), but received " +
                                 std::to_string(b.xs.size()));
          rk::autograd::NoGradGuard no_grad;
          rk::Generator gen(0);  // unused in inference
          rk::nn::Context ctx;
          ctx.training = false;
          ctx.rng = &gen;
          std::vector<rk::Tensor> o = g->forward(b.xs, ctx);
          for (size_t i = 0; i < o.size(); ++i) outs[i].push_back(o[i]);
        },
        [&](int64_t k, bool more) { return report(k, no_logs, more) && !src.interrupted; }, src.from_r() && !graph_calls_r(*g));
    Rcpp::List res(outs.size());
    if (steps > 0) {
      rk::autograd::NoGradGuard no_grad;
      for (size_t i = 0; i < outs.size(); ++i)
        res[i] = rkglue::tensor_to_r(outs[i].size() == 1 ? outs[i][0] : rk::ops::concatenate(outs[i], 0));
    }
    return Rcpp::List::create(Rcpp::Named("outputs") = steps > 0 ? static_cast<SEXP>(res) : R_NilValue,
                              Rcpp::Named("steps") = static_cast<int>(steps),
                              Rcpp::Named("interrupted") = report.interrupted || src.interrupted,
                              Rcpp::Named("exhausted") = src.exhausted);
  });
}

/// Keras's optimizer.finalize_variable_values() at the end of fit(): with use_ema, the trainable
/// weights of the trainer's graph take their moving averages.
// [[Rcpp::export(rng = false)]]
SEXP rk_trainer_finalize(SEXP trainer) {
  return guard([&]() -> SEXP {
    const auto& tr = shared_ref<rk::nn::Trainer>(trainer, kTrainerClass, "trainer");
    rk::nn::Graph& g = tr->graph();
    std::vector<rk::Tensor> params;
    for (int i : g.trainable_indices()) params.push_back(g.weights[static_cast<size_t>(i)]);
    tr->optimizer().finalize(params);
    return R_NilValue;
  });
}

/// Evaluation over all rows in batches of `batch_size` (resets the accumulators first); returns the logs.
// [[Rcpp::export(rng = false)]]
SEXP rk_trainer_evaluate(SEXP trainer, SEXP xs, SEXP ys, SEXP sample_weight, int batch_size) {
  return guard([&]() -> SEXP {
    const auto& tr = shared_ref<rk::nn::Trainer>(trainer, kTrainerClass, "trainer");
    if (batch_size < 1) throw rk::ValueError("`batch_size` must be a positive integer, got " + std::to_string(batch_size));
    std::vector<rk::Tensor> x = tensors_from_r(xs, "x"), y = tensors_from_r(ys, "y", true);
    rk::Tensor sw = optional_tensor(sample_weight, "sample_weight");
    if (x.empty()) throw rk::ValueError("evaluate: no inputs given");
    const int64_t n = x[0].rank() == 0 ? 1 : x[0].size(0);
    tr->reset_metrics();
    auto rows = [](const rk::Tensor& t, int64_t start, int64_t len) {
      std::vector<int64_t> s(static_cast<size_t>(t.rank()), 0), z(static_cast<size_t>(t.rank()), -1);
      s[0] = start;
      z[0] = len;
      return rk::ops::slice(t, s, z);
    };
    for (int64_t start = 0; start < n; start += batch_size) {
      const int64_t len = std::min<int64_t>(batch_size, n - start);
      std::vector<rk::Tensor> bx, by;
      rk::Tensor bsw;
      {
        rk::autograd::NoGradGuard ng;
        for (const auto& t : x) bx.push_back(rows(t, start, len));
        for (const auto& t : y) by.push_back(t.defined() ? rows(t, start, len) : rk::Tensor());
        if (sw.defined()) bsw = rows(sw, start, len);
      }
      tr->test_step(bx, by, bsw);
      if (user_interrupted()) throw Rcpp::internal::InterruptedException();
    }
    return logs_to_r(tr->logs());
  });
}
