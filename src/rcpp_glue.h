// Shared glue between R and the engine: the R tensor object (an external pointer to a
// heap-allocated rk::Tensor handle) and the guard that turns C++ exceptions into classed
// R conditions. Only the src/rcpp_*.cpp files include this header (and R headers at all).
#pragma once
#include <Rcpp.h>

#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/tensor.h"

#ifndef RCPP_USING_UNWIND_PROTECT
// Without unwind-protect, stop() inside the guard would longjmp over C++ frames.
#error "rkeras needs Rcpp with unwind-protect (Rcpp >= 1.0.10, R >= 3.5)"
#endif

namespace rkglue {

/// R class of the tensor object.
inline const char* tensor_class() { return "rkeras_tensor"; }

/// Signals an R error condition of class c(cls, "rkeras_error", "error", "condition") with `msg`.
/// stop() longjmps; unwind-protect turns that into Rcpp::LongjumpException, which unwinds our
/// frames and is resumed by END_RCPP, so the condition reaches R with its classes intact.
[[noreturn]] inline void signal_condition(const std::string& cls, const std::string& msg) {
  Rcpp::CharacterVector klass = (cls == "rkeras_error")
                                    ? Rcpp::CharacterVector::create("rkeras_error", "error", "condition")
                                    : Rcpp::CharacterVector::create(cls, "rkeras_error", "error", "condition");
  Rcpp::List cond = Rcpp::List::create(Rcpp::Named("message") = msg, Rcpp::Named("call") = R_NilValue);
  cond.attr("class") = klass;
  Rcpp::Shield<SEXP> call(Rf_lang2(Rf_install("stop"), cond));
  Rcpp::Rcpp_fast_eval(call, R_BaseEnv);
  throw std::logic_error("stop() returned");  // unreachable: stop() always jumps
}

/// Runs `body`, converting engine and standard exceptions into classed R conditions.
/// The condition is raised after the catch block has ended, so no exception is live
/// while R code runs.
template <typename F>
auto guard(F&& body) -> decltype(body()) {
  std::string cls, msg;
  try {
    return body();
  } catch (const Rcpp::LongjumpException&) {
    throw;  // an R error raised inside: let END_RCPP resume it unchanged
  } catch (const Rcpp::internal::InterruptedException&) {
    throw;
  } catch (const rk::Error& e) {
    cls = e.r_class();
    msg = e.what();
  } catch (const std::bad_alloc&) {
    cls = "rkeras_memory_error";
    msg = "out of memory (std::bad_alloc)";
  } catch (const std::exception& e) {
    cls = "rkeras_error";
    msg = e.what();
  }
  signal_condition(cls, msg);
}

/// Finalizer of the external pointer: drops the handle (storage is freed when no handle is left).
inline void tensor_finalizer(SEXP p) {
  auto* t = static_cast<rk::Tensor*>(R_ExternalPtrAddr(p));
  if (t) {
    R_ClearExternalPtr(p);
    delete t;
  }
}

/// True if `x` is an R tensor object (class check only).
inline bool is_tensor(SEXP x) { return TYPEOF(x) == EXTPTRSXP && Rf_inherits(x, tensor_class()); }

/// The engine handle behind R tensor `x`; throws TypeError naming `what` if `x` is not one and
/// ValueError if its pointer is gone (a tensor saved with saveRDS() and read back).
inline const rk::Tensor& tensor_ref(SEXP x, const char* what = "x") {
  if (!is_tensor(x))
    throw rk::TypeError(std::string(what) + " must be an rkeras_tensor, got " +
                        (Rf_isNull(Rf_getAttrib(x, R_ClassSymbol)) ? Rf_type2char(TYPEOF(x))
                                                                     : CHAR(STRING_ELT(Rf_getAttrib(x, R_ClassSymbol), 0))));
  auto* t = static_cast<rk::Tensor*>(R_ExternalPtrAddr(x));
  if (!t || !t->defined())
    throw rk::ValueError(std::string(what) +
                         " is an invalid rkeras_tensor (its memory is gone, e.g. it was saved and reloaded)");
  return *t;
}

/// Wraps an engine handle as a new R tensor object (class "rkeras_tensor").
inline SEXP wrap_tensor(rk::Tensor t) {
  // The pointer is created empty and the finalizer registered before the handle is
  // attached, so a failing R allocation can never leak the handle.
  Rcpp::Shield<SEXP> p(R_MakeExternalPtr(nullptr, R_NilValue, R_NilValue));
  R_RegisterCFinalizerEx(p, tensor_finalizer, TRUE);
  R_SetExternalPtrAddr(p, new rk::Tensor(std::move(t)));
  Rf_setAttrib(p, R_ClassSymbol, Rf_mkString(tensor_class()));
  return p;
}

/// Engine tensor from an R atomic vector or array (column-major in, row-major inside, same
/// value at the same index). `dtype` empty = natural type (double -> float64, integer -> int32,
/// logical -> bool). Throws TypeError for non-numeric input, ValueError for NA.
rk::Tensor tensor_from_r(SEXP x, const std::string& dtype);

/// R vector/array holding the values of `t` (float -> double, int32 -> integer, bool -> logical).
SEXP tensor_to_r(const rk::Tensor& t);

}  // namespace rkglue
