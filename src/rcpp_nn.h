// Glue shared by the nn glue files (rcpp_nn.cpp, rcpp_train.cpp): the R objects that hold engine
// layers ("rkeras_engine_layer") and graphs ("rkeras_engine_graph"). Each external pointer's
// address is a heap-allocated std::shared_ptr, so the engine objects can be shared (a Trainer holds
// the Graph, a Graph holds its layers) and outlive the R object that created them.
#pragma once
#include <Rcpp.h>

#include <memory>
#include <string>

#include "core/error.h"
#include "nn/graph.h"
#include "nn/layer.h"

namespace rkglue {

/// A Keras config (named list) as engine Attrs: numbers/integers/logicals (NA -> NaN), single strings,
/// lists of single numbers (flattened); NULL entries (Keras None) are left out. TypeError names `what`.
rk::nn::Attrs attrs_from_r(SEXP x, const char* what = "attrs");

/// Finalizer of an external pointer whose address is a heap-allocated std::shared_ptr<T>.
template <typename T>
void shared_finalizer(SEXP p) {
  auto* h = static_cast<std::shared_ptr<T>*>(R_ExternalPtrAddr(p));
  if (h) {
    R_ClearExternalPtr(p);
    delete h;
  }
}

/// Wraps a shared engine object as an R external pointer of class `cls`; the finalizer is
/// registered before the object is attached, so a failing R allocation cannot leak it.
template <typename T>
SEXP wrap_shared(std::shared_ptr<T> obj, const char* cls) {
  Rcpp::Shield<SEXP> p(R_MakeExternalPtr(nullptr, R_NilValue, R_NilValue));
  R_RegisterCFinalizerEx(p, shared_finalizer<T>, TRUE);
  R_SetExternalPtrAddr(p, new std::shared_ptr<T>(std::move(obj)));
  Rf_setAttrib(p, R_ClassSymbol, Rf_mkString(cls));
  return p;
}

/// The engine layer behind an "rkeras_engine_layer" object; TypeError/ValueError naming `what` otherwise.
inline const std::shared_ptr<const rk::nn::Layer>& layer_ref(SEXP x, const char* what = "layer") {
  if (TYPEOF(x) != EXTPTRSXP || !Rf_inherits(x, "rkeras_engine_layer"))
    throw rk::TypeError(std::string(what) + " must be an rkeras_engine_layer");
  auto* p = static_cast<std::shared_ptr<const rk::nn::Layer>*>(R_ExternalPtrAddr(x));
  if (!p || !*p)
    throw rk::ValueError(std::string(what) + " is an invalid engine layer (its memory is gone, e.g. it was saved and "
                                             "reloaded); rebuild it");
  return *p;
}

/// The engine graph behind an "rkeras_engine_graph" object; TypeError/ValueError naming `what` otherwise.
inline const std::shared_ptr<rk::nn::Graph>& graph_ref(SEXP x, const char* what = "graph") {
  if (TYPEOF(x) != EXTPTRSXP || !Rf_inherits(x, "rkeras_engine_graph"))
    throw rk::TypeError(std::string(what) + " must be an rkeras_engine_graph");
  auto* p = static_cast<std::shared_ptr<rk::nn::Graph>*>(R_ExternalPtrAddr(x));
  if (!p || !*p)
    throw rk::ValueError(std::string(what) + " is an invalid engine graph (its memory is gone, e.g. it was saved and "
                                             "reloaded); rebuild it");
  return *p;
}

}  // namespace rkglue
