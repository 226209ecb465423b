// Element types the engine stores. Kept tiny: every kernel dispatches on it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace rk {

/// Element type of a tensor. Bool is one byte per element (0 or 1).
enum class DType : uint8_t { Float32, Float64, Int32, Bool };

/// Size in bytes of one element of `t`.
size_t dtype_size(DType t);
/// Keras-style name of `t` ("float32", "float64", "int32", "bool").
const char* dtype_name(DType t);
/// Parses a Keras-style dtype name; throws ValueError on an unknown name.
DType dtype_from_name(const std::string& name);
/// True for float32 and float64 (the types that carry gradients).
inline bool is_floating(DType t) { return t == DType::Float32 || t == DType::Float64; }
/// The type both operands of a binary op are promoted to (bool < int32 < float32 < float64).
DType promote_types(DType a, DType b);

}  // namespace rk

// Note: the body is a macro argument, and GCC rejects `#pragma omp` inside one: call a
// templated kernel from the body instead of writing the parallel loop inline.

/// Runs `...` with `scalar_t` bound to the C++ type of a floating dtype; throws TypeError otherwise.
#define RK_DISPATCH_FLOAT(dtype, opname, ...)                                          \
  [&] {                                                                                \
    switch (dtype) {                                                                   \
      case ::rk::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }    \
      case ::rk::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }   \
      default: ::rk::throw_dtype_error(opname, dtype, "float32 or float64");          \
    }                                                                                  \
  }()

/// Like RK_DISPATCH_FLOAT but also binds int32 and bool (as uint8_t).
#define RK_DISPATCH_ALL(dtype, opname, ...)                                            \
  [&] {                                                                                \
    switch (dtype) {                                                                   \
      case ::rk::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }    \
      case ::rk::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }   \
      case ::rk::DType::Int32: { using scalar_t = int32_t; return __VA_ARGS__(); }    \
      case ::rk::DType::Bool: { using scalar_t = uint8_t; return __VA_ARGS__(); }     \
      default: ::rk::throw_dtype_error(opname, dtype, "a known dtype");               \
    }                                                                                  \
  }()
