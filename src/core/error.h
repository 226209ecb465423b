// Typed engine errors. The glue maps each class to an R condition class
// (rkeras_shape_error, ...), so the type carries meaning; the message names shapes.
#pragma once
#include <stdexcept>
#include <string>

#include "core/dtype.h"

namespace rk {

/// Base of every engine error (maps to R class "rkeras_error").
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
  /// R condition class of this error, most specific first.
  virtual const char* r_class() const { return "rkeras_error"; }
};

/// Incompatible or invalid shapes (maps to "rkeras_shape_error").
class ShapeError : public Error {
 public:
  using Error::Error;
  const char* r_class() const override { return "rkeras_shape_error"; }
};

/// A value outside its allowed range, NA/NaN where not allowed, unknown names ("rkeras_value_error").
class ValueError : public Error {
 public:
  using Error::Error;
  const char* r_class() const override { return "rkeras_value_error"; }
};

/// A dtype the operation does not accept ("rkeras_type_error").
class TypeError : public Error {
 public:
  using Error::Error;
  const char* r_class() const override { return "rkeras_type_error"; }
};

/// An index or axis out of range ("rkeras_index_error").
class IndexError : public Error {
 public:
  using Error::Error;
  const char* r_class() const override { return "rkeras_index_error"; }
};

/// Allocation failed even after freeing caches ("rkeras_memory_error").
class OutOfMemoryError : public Error {
 public:
  using Error::Error;
  const char* r_class() const override { return "rkeras_memory_error"; }
};

/// A feature that this build or device does not provide ("rkeras_unsupported_error").
class UnsupportedError : public Error {
 public:
  using Error::Error;
  const char* r_class() const override { return "rkeras_unsupported_error"; }
};

/// Misuse of the autograd API, e.g. backward through a released graph ("rkeras_autograd_error").
class AutogradError : public Error {
 public:
  using Error::Error;
  const char* r_class() const override { return "rkeras_autograd_error"; }
};

/// Throws TypeError: "`op` expects `expected` but got dtype `got`".
[[noreturn]] void throw_dtype_error(const char* op, DType got, const char* expected);

}  // namespace rk
