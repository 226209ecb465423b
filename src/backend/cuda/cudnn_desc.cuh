// RAII owners of cuDNN descriptors, the cuDNN data type of an engine dtype, and the alpha/beta
// scaling constants cuDNN's legacy calls take (float for float data, double for double data).
// Descriptors are cheap to create (microseconds), so callers build them per call.
#pragma once
#include <cudnn.h>

#include <cstdint>
#include <vector>

#include "backend/cuda/check.cuh"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace rk::cuda {

/// Owns one cuDNN descriptor of type D, created by Create and destroyed by Destroy; not copyable.
template <typename D, cudnnStatus_t (*Create)(D*), cudnnStatus_t (*Destroy)(D)>
struct CudnnDesc {
  D d = nullptr;
  CudnnDesc() { RK_CUDNN_CHECK(Create(&d)); }
  ~CudnnDesc() { Destroy(d); }
  CudnnDesc(const CudnnDesc&) = delete;
  CudnnDesc& operator=(const CudnnDesc&) = delete;
};

using TensorDesc = CudnnDesc<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc = CudnnDesc<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc =
    CudnnDesc<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;
using PoolDesc = CudnnDesc<cudnnPoolingDescriptor_t, cudnnCreatePoolingDescriptor, cudnnDestroyPoolingDescriptor>;
using ActivationDesc =
    CudnnDesc<cudnnActivationDescriptor_t, cudnnCreateActivationDescriptor, cudnnDestroyActivationDescriptor>;

/// CUDNN_DATA_FLOAT / CUDNN_DATA_DOUBLE for float32 / float64; TypeError naming `op` otherwise.
inline cudnnDataType_t cudnn_float_type(DType t, const char* op) {
  if (t == DType::Float32) return CUDNN_DATA_FLOAT;
  if (t == DType::Float64) return CUDNN_DATA_DOUBLE;
  throw_dtype_error(op, t, "float32 or float64");
}

/// alpha/beta values in the scaling type cuDNN expects for data of dtype t (double for float64).
struct CudnnScale {
  float f1 = 1, f0 = 0;
  double d1 = 1, d0 = 0;
  const void* one(DType t) const { return t == DType::Float64 ? static_cast<const void*>(&d1) : &f1; }
  const void* zero(DType t) const { return t == DType::Float64 ? static_cast<const void*>(&d0) : &f0; }
};

/// cuDNN dims (N, C, spatial...) of a channels-last shape [N, *spatial, C]; one spatial axis
/// becomes 2D with height 1 (cuDNN's legacy pooling and convolution take 2 or 3 spatial axes).
inline std::vector<int> channels_last_dims(const Shape& s) {
  std::vector<int> d = {static_cast<int>(s[0]), static_cast<int>(s[-1])};
  if (s.rank() == 3) d.push_back(1);
  for (int i = 1; i + 1 < s.rank(); ++i) d.push_back(static_cast<int>(s[i]));
  return d;
}

/// Sets td to the channels-last (NHWC / NDHWC) tensor of shape s: dims in cuDNN's NCHW order
/// with strides that put the channels innermost.
inline void set_channels_last(cudnnTensorDescriptor_t td, const Shape& s, cudnnDataType_t t) {
  const std::vector<int> d = channels_last_dims(s);
  const int nd = static_cast<int>(d.size());
  std::vector<int> st(d.size());
  st[1] = 1;
  int acc = d[1];
  for (int i = nd - 1; i >= 2; --i) {
    st[static_cast<size_t>(i)] = acc;
    acc *= d[static_cast<size_t>(i)];
  }
  st[0] = acc;
  RK_CUDNN_CHECK(cudnnSetTensorNdDescriptor(td, t, nd, d.data(), st.data()));
}

/// Largest element count one legacy cuDNN call is given (its dims and strides are int).
constexpr int64_t kCudnnMaxElems = 2147483647;

/// True for cuDNN's "not supported" family (3000-3999): the call did nothing, and the caller may
/// run its own kernel instead.
inline bool cudnn_not_supported(cudnnStatus_t st) { return st >= CUDNN_STATUS_NOT_SUPPORTED && st < 4000; }

/// t's first byte, for calls that address a chunk of t by a byte offset.
inline char* byte_ptr(const Tensor& t) { return static_cast<char*>(t.raw_data()); }

}  // namespace rk::cuda
