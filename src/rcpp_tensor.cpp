// R <-> engine tensors: conversion of R arrays, tensor attributes and autograd entry points.
#include "rcpp_glue.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "backend/backend.h"
#include "core/device.h"
#include "ops/ops.h"

namespace rkglue {

namespace {

constexpr int kMaxRank = 8;

// What R calls the object, for "got ..." in error messages.
std::string r_kind(SEXP x) {
  if (Rf_isFrame(x)) return "data.frame";
  if (Rf_isFactor(x)) return "factor";
  if (is_tensor(x)) return "rkeras_tensor";
  switch (TYPEOF(x)) {
    case STRSXP: return "character";
    case VECSXP: return "list";
    case CPLXSXP: return "complex";
    case RAWSXP: return "raw";
    case NILSXP: return "NULL";
    default: return Rf_type2char(TYPEOF(x));
  }
}

[[noreturn]] void throw_na(R_xlen_t i) {
  throw rk::ValueError("x contains NA at position " + std::to_string(static_cast<long long>(i) + 1) +
                       "; NA is not allowed in a tensor");
}

template <typename Out>
Out from_double(double v, R_xlen_t i) {
  // R_IsNA is an out-of-line call; NA is a NaN, so only NaNs need it (a large array converts 5x faster).
  if (std::isnan(v) && R_IsNA(v)) throw_na(i);
  if constexpr (std::is_same_v<Out, int32_t>) {
    // as.integer() semantics: truncate toward zero; no silent wrap-around.
    if (!(v > -2147483649.0 && v < 2147483648.0))
      throw rk::ValueError("x[" + std::to_string(static_cast<long long>(i) + 1) + "] = " + std::to_string(v) +
                           " cannot be represented as int32");
    return static_cast<int32_t>(v);
  } else if constexpr (std::is_same_v<Out, uint8_t>) {
    return v != 0 ? 1 : 0;
  } else {
    return static_cast<Out>(v);
  }
}

template <typename Out>
Out from_int(int v, R_xlen_t i) {
  if (v == NA_INTEGER) throw_na(i);  // NA_LOGICAL has the same bit pattern
  if constexpr (std::is_same_v<Out, uint8_t>) return v != 0 ? 1 : 0;
  else return static_cast<Out>(v);
}

// Copies R's (column-major) values into `t` in storage order, converting to Out.
template <typename Out>
void fill_from_r(SEXP x, rk::Tensor& t) {
  Out* dst = t.data<Out>();
  R_xlen_t n = XLENGTH(x);
  if (TYPEOF(x) == REALSXP) {
    const double* src = REAL(x);
    for (R_xlen_t i = 0; i < n; ++i) dst[i] = from_double<Out>(src[i], i);
  } else {
    const int* src = TYPEOF(x) == INTSXP ? INTEGER(x) : LOGICAL(x);
    for (R_xlen_t i = 0; i < n; ++i) dst[i] = from_int<Out>(src[i], i);
  }
}

template <typename Out>
void fill_from_r_matrix_tiled(SEXP x, rk::Tensor& t, int64_t n, int64_t p) {
  constexpr int64_t kTile = 64;
  Out* dst = t.data<Out>();
  const bool real = TYPEOF(x) == REALSXP;
  const double* dsrc = real ? REAL(x) : nullptr;
  const int* isrc = real ? nullptr : (TYPEOF(x) == INTSXP ? INTEGER(x) : LOGICAL(x));
  for (int64_t i0 = 0; i0 < n; i0 += kTile) {
    const int64_t i1 = std::min(n, i0 + kTile);
    for (int64_t j0 = 0; j0 < p; j0 += kTile) {
      const int64_t j1 = std::min(p, j0 + kTile);
      for (int64_t i = i0; i < i1; ++i) {
        Out* row = dst + i * p;
        for (int64_t j = j0; j < j1; ++j) {
          const R_xlen_t k = static_cast<R_xlen_t>(i + j * n);
          row[j] = real ? from_double<Out>(dsrc[k], k) : from_int<Out>(isrc[k], k);
        }
      }
    }
  }
}

// An n x p R matrix (column-major) into the row-major n x p tensor `t`, converting to Out, in
// square tiles so both sides stay in cache. A value that cannot be converted (NA, int32 range) is
// reported exactly as fill_from_r reports it: the first one in R's order.
template <typename Out>
void fill_from_r_matrix(SEXP x, rk::Tensor& t, int64_t n, int64_t p) {
  try {
    fill_from_r_matrix_tiled<Out>(x, t, n, p);
  } catch (const rk::ValueError&) {
    const R_xlen_t len = XLENGTH(x);
    for (R_xlen_t k = 0; k < len; ++k) {
      if (TYPEOF(x) == REALSXP) (void)from_double<Out>(REAL(x)[k], k);
      else (void)from_int<Out>((TYPEOF(x) == INTSXP ? INTEGER(x) : LOGICAL(x))[k], k);
    }
    throw;
  }
}

template <typename In>
void copy_to_r(const In* src, R_xlen_t n, SEXP out) {
  switch (TYPEOF(out)) {
    case REALSXP: {
      double* d = REAL(out);
      for (R_xlen_t i = 0; i < n; ++i) d[i] = static_cast<double>(src[i]);
      break;
    }
    case INTSXP: {
      int* d = INTEGER(out);
      for (R_xlen_t i = 0; i < n; ++i) d[i] = static_cast<int>(src[i]);
      break;
    }
    default: {
      int* d = LOGICAL(out);
      for (R_xlen_t i = 0; i < n; ++i) d[i] = src[i] != 0 ? 1 : 0;
      break;
    }
  }
}

// Allocation through unwind-protect: an R memory error then unwinds our frames properly.
SEXP alloc_r(SEXPTYPE type, R_xlen_t n) {
  return Rcpp::unwindProtect([&] { return Rf_allocVector(type, n); });
}

}  // namespace

// Everything made from R (weights, data sets, constants) goes to the engine's default device,
// once: a data set converted by fit() is uploaded whole, and batches are gathered there.
static rk::Tensor to_default_device(const rk::Tensor& t) {
  const rk::Device d = rk::default_device();
  if (d == t.device()) return t;
  rk::autograd::NoGradGuard no_grad;
  return rk::ops::to_device(t, d);
}

rk::Tensor tensor_from_r(SEXP x, const std::string& dtype) {
  int type = TYPEOF(x);
  if ((type != REALSXP && type != INTSXP && type != LGLSXP) || Rf_isFactor(x) || Rf_isFrame(x))
    throw rk::TypeError("expected a numeric, integer or logical array, got " + r_kind(x));

  // R's dims, outermost last; the row-major tensor of REVERSED dims shares R's memory order.
  std::vector<int64_t> rdims;
  SEXP dim = Rf_getAttrib(x, R_DimSymbol);
  if (!Rf_isNull(dim)) {
    if (Rf_length(dim) > kMaxRank)
      throw rk::ShapeError("tensors have rank <= " + std::to_string(kMaxRank) + ", got an array with " +
                           std::to_string(Rf_length(dim)) + " dimensions");
    for (int i = 0; i < Rf_length(dim); ++i) rdims.push_back(INTEGER(dim)[i]);
  } else if (XLENGTH(x) != 1) {
    rdims.push_back(static_cast<int64_t>(XLENGTH(x)));
  }
  std::vector<int64_t> rev(rdims.rbegin(), rdims.rend());

  rk::DType dt = !dtype.empty() ? rk::dtype_from_name(dtype)
                 : type == REALSXP ? rk::DType::Float64
                 : type == INTSXP  ? rk::DType::Int32
                                   : rk::DType::Bool;
  if (rdims.size() == 2 && XLENGTH(x) > 0) {
    // A matrix (the usual data): convert and transpose in one cache-blocked pass straight into the
    // row-major tensor, instead of a converted copy plus a permuted copy (half the peak memory,
    // and the big intermediate never lands in the allocator's cache).
    rk::Tensor t = rk::Tensor::empty(rk::Shape(rdims), dt);
    switch (dt) {
      case rk::DType::Float32: fill_from_r_matrix<float>(x, t, rdims[0], rdims[1]); break;
      case rk::DType::Float64: fill_from_r_matrix<double>(x, t, rdims[0], rdims[1]); break;
      case rk::DType::Int32: fill_from_r_matrix<int32_t>(x, t, rdims[0], rdims[1]); break;
      case rk::DType::Bool: fill_from_r_matrix<uint8_t>(x, t, rdims[0], rdims[1]); break;
    }
    return to_default_device(t);
  }
  rk::Tensor t = rk::Tensor::empty(rk::Shape(rev), dt);
  switch (dt) {
    case rk::DType::Float32: fill_from_r<float>(x, t); break;
    case rk::DType::Float64: fill_from_r<double>(x, t); break;
    case rk::DType::Int32: fill_from_r<int32_t>(x, t); break;
    case rk::DType::Bool: fill_from_r<uint8_t>(x, t); break;
  }
  // Reversing the axes of the reversed-dims tensor gives shape == dim(x) with element
  // (i-1, j-1, k-1) == x[i, j, k]; it reuses the engine's permute kernel.
  if (rev.size() >= 2) {
    rk::autograd::NoGradGuard no_grad;
    t = rk::ops::transpose(t);
  }
  return to_default_device(t);
}

SEXP tensor_to_r(const rk::Tensor& t0) {
  rk::Tensor t = t0.detach();
  if (t.device().type != rk::DeviceType::CPU) {  // results come back to R as host arrays
    rk::autograd::NoGradGuard no_grad;
    t = rk::ops::to_device(t, rk::cpu_device());
  }
  for (int i = 0; i < t.rank(); ++i)
    if (t.size(i) > INT_MAX)
      throw rk::ShapeError("cannot convert a tensor of shape " + t.shape().str() +
                           " to an R array: R dimensions are limited to 2^31 - 1");
  if (t.rank() >= 2) {
    // Row-major storage of the axis-reversed tensor is R's column-major order.
    rk::autograd::NoGradGuard no_grad;
    t = rk::ops::transpose(t);
  }
  SEXPTYPE type = rk::is_floating(t.dtype()) ? REALSXP : t.dtype() == rk::DType::Int32 ? INTSXP : LGLSXP;
  R_xlen_t n = static_cast<R_xlen_t>(t.numel());
  Rcpp::Shield<SEXP> out(alloc_r(type, n));
  switch (t.dtype()) {
    case rk::DType::Float32: copy_to_r(t.data<float>(), n, out); break;
    case rk::DType::Float64: copy_to_r(t.data<double>(), n, out); break;
    case rk::DType::Int32: copy_to_r(t.data<int32_t>(), n, out); break;
    case rk::DType::Bool: copy_to_r(t.data<uint8_t>(), n, out); break;
  }
  if (t0.rank() >= 1) {
    Rcpp::Shield<SEXP> dim(alloc_r(INTSXP, t0.rank()));
    for (int i = 0; i < t0.rank(); ++i) INTEGER(dim)[i] = static_cast<int>(t0.size(i));
    Rf_setAttrib(out, R_DimSymbol, dim);
  }
  return out;
}

}  // namespace rkglue

using rkglue::guard;
using rkglue::tensor_ref;
using rkglue::wrap_tensor;

// [[Rcpp::export(rng = false)]]
SEXP rk_tensor_from_r(SEXP x, SEXP dtype) {
  return guard([&] {
    std::string dt;
    if (!Rf_isNull(dtype)) {
      if (TYPEOF(dtype) != STRSXP || XLENGTH(dtype) != 1 || STRING_ELT(dtype, 0) == NA_STRING)
        throw rk::TypeError("dtype must be a single string such as \"float32\"");
      dt = CHAR(STRING_ELT(dtype, 0));
    }
    return wrap_tensor(rkglue::tensor_from_r(x, dt));
  });
}

// [[Rcpp::export(rng = false)]]
SEXP rk_tensor_to_r(SEXP x) {
  return guard([&] { return rkglue::tensor_to_r(tensor_ref(x)); });
}

// [[Rcpp::export(rng = false)]]
SEXP rk_tensor_shape(SEXP x) {
  return guard([&]() -> SEXP {
    const rk::Tensor& t = tensor_ref(x);
    bool fits = true;
    for (int i = 0; i < t.rank(); ++i) fits = fits && t.size(i) <= INT_MAX;
    if (fits) {
      Rcpp::IntegerVector d(t.rank());
      for (int i = 0; i < t.rank(); ++i) d[i] = static_cast<int>(t.size(i));
      return d;
    }
    Rcpp::NumericVector d(t.rank());
    for (int i = 0; i < t.rank(); ++i) d[i] = static_cast<double>(t.size(i));
    return d;
  });
}

// [[Rcpp::export(rng = false)]]
std::string rk_tensor_dtype(SEXP x) {
  return guard([&] { return std::string(rk::dtype_name(tensor_ref(x).dtype())); });
}

/// The device of tensor `x`: "cpu" or "cuda:N" (tests check where weights and data live).
// [[Rcpp::export(rng = false)]]
std::string rk_tensor_device(SEXP x) {
  return guard([&] { return tensor_ref(x).device().str(); });
}

// [[Rcpp::export(rng = false)]]
std::string rk_tensor_shape_str(SEXP x) {
  return guard([&] { return tensor_ref(x).shape().str(); });
}

// [[Rcpp::export(rng = false)]]
double rk_tensor_numel(SEXP x) {
  return guard([&] { return static_cast<double>(tensor_ref(x).numel()); });
}

// [[Rcpp::export(rng = false)]]
bool rk_tensor_is_valid(SEXP x) {
  return guard([&] {
    if (!rkglue::is_tensor(x)) return false;
    auto* t = static_cast<rk::Tensor*>(R_ExternalPtrAddr(x));
    return t != nullptr && t->defined();
  });
}

// [[Rcpp::export(rng = false)]]
bool rk_tensor_requires_grad(SEXP x) {
  return guard([&] { return tensor_ref(x).requires_grad(); });
}

// [[Rcpp::export(rng = false)]]
SEXP rk_tensor_set_requires_grad(SEXP x, bool on) {
  return guard([&] {
    const rk::Tensor& t = tensor_ref(x);
    if (!on && rk::autograd::grad_fn(t))
      throw rk::AutogradError("requires_grad can only be turned off on a leaf tensor; use detach() instead");
    rk::Tensor(t).set_requires_grad(on);
    return x;
  });
}

// [[Rcpp::export(rng = false)]]
SEXP rk_tensor_grad(SEXP x) {
  return guard([&]() -> SEXP {
    rk::Tensor g = rk::autograd::grad(tensor_ref(x));
    if (!g.defined()) return R_NilValue;
    return wrap_tensor(g);
  });
}

// [[Rcpp::export(rng = false)]]
SEXP rk_tensor_set_grad(SEXP x, SEXP grad) {
  return guard([&] {
    const rk::Tensor& t = tensor_ref(x);
    if (Rf_isNull(grad)) {
      rk::autograd::set_grad(t, rk::Tensor());
    } else {
      const rk::Tensor& g = tensor_ref(grad, "grad");
      if (g.shape() != t.shape() || g.dtype() != t.dtype())
        throw rk::ShapeError("grad of shape " + g.shape().str() + " and dtype " + rk::dtype_name(g.dtype()) +
                             " does not match the tensor's shape " + t.shape().str() + " and dtype " +
                             rk::dtype_name(t.dtype()));
      rk::autograd::set_grad(t, g.detach());
    }
    return x;
  });
}

// [[Rcpp::export(rng = false)]]
SEXP rk_tensor_backward(SEXP x, SEXP grad, bool retain_graph) {
  return guard([&] {
    rk::Tensor g;
    if (!Rf_isNull(grad)) g = tensor_ref(grad, "grad");
    rk::autograd::backward(tensor_ref(x), g, retain_graph);
    return R_NilValue;
  });
}

// [[Rcpp::export(rng = false)]]
SEXP rk_tensor_detach(SEXP x) {
  return guard([&] { return wrap_tensor(tensor_ref(x).detach()); });
}

// [[Rcpp::export(rng = false)]]
bool rk_grad_enabled() {
  return guard([] { return rk::autograd::grad_enabled(); });
}

/// Sets the grad mode and returns the previous one (so R can restore it on exit).
// [[Rcpp::export(rng = false)]]
bool rk_set_grad_enabled(bool on) {
  return guard([&] {
    bool prev = rk::autograd::grad_enabled();
    rk::autograd::set_grad_enabled(on);
    return prev;
  });
}

/// Sets the engine's default device: "cpu" or "cuda" (device 0). The R side checked that a GPU
/// is usable (config_set_backend()); returns the previous device as a string.
// [[Rcpp::export(rng = false)]]
std::string rk_set_default_device(std::string device) {
  return rkglue::guard([&] {
    const std::string before = rk::default_device().str();
    if (device == "cpu") rk::set_default_device(rk::cpu_device());
    else if (device == "cuda") {
      rk::backend_for(rk::Device{rk::DeviceType::CUDA, 0});  // throws UnsupportedError if unusable
      rk::set_default_device(rk::Device{rk::DeviceType::CUDA, 0});
    } else {
      throw rk::ValueError("device must be \"cpu\" or \"cuda\", got \"" + device + "\"");
    }
    return before;
  });
}

/// The engine's default device as "cpu" or "cuda:N".
// [[Rcpp::export(rng = false)]]
std::string rk_default_device() { return rk::default_device().str(); }
