// CUDA elementwise kernels: host<->device copies and conversion, fill, broadcasting,
// unary/binary/where. The formulas are those of backend/cpu/elementwise.cpp, element by element.
// The float activations cuDNN has with the CPU's semantics (see cudnn_activation) run through
// cudnnActivationForward/Backward; every other unary op is the kernel below.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "backend/cuda/cuda_backend.cuh"
#include "backend/cuda/cudnn_desc.cuh"
#include "backend/cuda/kernels.cuh"

namespace rk::cuda {

BcastPlan make_bcast_plan(const Shape& out, const Shape* const* ins, int nin) {
  const int r = out.rank();
  BcastPlan p;
  for (int i = 0; i < r; ++i) {
    const int64_t d = out[i];
    if (d == 1) continue;
    int64_t st[3] = {0, 0, 0};
    for (int j = 0; j < nin; ++j) {
      const Shape& s = *ins[j];
      const int off = r - s.rank();
      if (i >= off && s[i - off] != 1) st[j] = s.strides()[static_cast<size_t>(i - off)];
    }
    // Merge with the previous axis when every operand walks both contiguously.
    bool merge = p.nd > 0;
    for (int j = 0; j < nin && merge; ++j) merge = p.st[j][p.nd - 1] == st[j] * d;
    if (merge) {
      p.dims[p.nd - 1] *= d;
      for (int j = 0; j < nin; ++j) p.st[j][p.nd - 1] = st[j];
      continue;
    }
    if (p.nd == kMaxDims)
      throw UnsupportedError("broadcasting over more than " + std::to_string(kMaxDims) +
                             " non-mergeable axes is not implemented on the CUDA backend yet");
    p.dims[p.nd] = d;
    for (int j = 0; j < nin; ++j) p.st[j][p.nd] = st[j];
    ++p.nd;
  }
  if (p.nd == 0) {
    p.nd = 1;
    p.dims[0] = 1;
    for (int j = 0; j < nin; ++j) p.st[j][0] = 0;
  }
  return p;
}

void require_on(const Tensor& t, int index, const char* op) {
  const Device d = t.device();
  if (d.type != DeviceType::CUDA || d.index != index)
    throw UnsupportedError(std::string(op) + " on cuda:" + std::to_string(index) + " got a tensor on " + d.str());
}

namespace {

// ---------------------------------------------------------------------------------- scalar functions
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;
constexpr double kInvSqrt2 = 0.70710678118654752440084436210485;
constexpr double kInvSqrt2Pi = 0.39894228040143267793994605993438;
constexpr double k2OverSqrtPi = 1.1283791670955125738961589031215;
constexpr double kGeluC = 0.044715;

template <typename T> __device__ T sigmoid_of(T x) {
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T e = exp(x);
  return e / (T(1) + e);
}
template <typename T> __device__ T softplus_of(T x) { return (x > T(0) ? x : T(0)) + log1p(exp(-fabs(x))); }
template <typename T> __device__ T sign_of(T x) { return x > T(0) ? T(1) : x < T(0) ? T(-1) : x; }

template <typename T>
__device__ T unary_f(UnaryOp op, T v, T a, T b) {
  switch (op) {
    case UnaryOp::Neg: return -v;
    case UnaryOp::Exp: return exp(v);
    case UnaryOp::Log: return log(v);
    case UnaryOp::Log1p: return log1p(v);
    case UnaryOp::Sqrt: return sqrt(v);
    case UnaryOp::Square: return v * v;
    case UnaryOp::Abs: return fabs(v);
    case UnaryOp::Sign: return sign_of(v);
    case UnaryOp::Reciprocal: return T(1) / v;
    case UnaryOp::Tanh: return tanh(v);
    case UnaryOp::Sigmoid: return sigmoid_of(v);
    case UnaryOp::Relu: return v < T(0) ? T(0) : v;  // keeps NaN, as the CPU's bit mask
    case UnaryOp::Relu6: return v < T(0) ? T(0) : v > T(6) ? T(6) : v;
    case UnaryOp::Elu: return v > T(0) ? v : a * expm1(v);
    case UnaryOp::Selu: return T(kSeluScale) * (v > T(0) ? v : T(kSeluAlpha) * expm1(v));
    case UnaryOp::Softplus: return softplus_of(v);
    case UnaryOp::Softsign: return v / (T(1) + fabs(v));
    case UnaryOp::Gelu: return T(0.5) * v * (T(1) + erf(v * T(kInvSqrt2)));
    case UnaryOp::GeluTanh: return T(0.5) * v * (T(1) + tanh(T(kSqrt2OverPi) * (v + T(kGeluC) * v * v * v)));
    case UnaryOp::Silu: return v * sigmoid_of(v);
    case UnaryOp::Mish: return v * tanh(softplus_of(v));
    case UnaryOp::LeakyRelu: return v >= T(0) ? v : a * v;
    case UnaryOp::HardSigmoid: {
      const T z = a * v + b;
      return z < T(0) ? T(0) : z > T(1) ? T(1) : z;
    }
    case UnaryOp::Erf: return erf(v);
    case UnaryOp::Clip: {
      const T lo = v < a ? a : v;
      return lo > b ? b : lo;
    }
    case UnaryOp::LogicalNot: return v == T(0) ? T(1) : T(0);
  }
  return v;
}

template <typename T>
__device__ T unary_grad(UnaryOp op, T u, T v, T g, T a, T b) {
  switch (op) {
    case UnaryOp::Neg: return -g;
    case UnaryOp::Exp: return g * v;
    case UnaryOp::Log: return g / u;
    case UnaryOp::Log1p: return g / (T(1) + u);
    case UnaryOp::Sqrt: return g * T(0.5) / v;
    case UnaryOp::Square: return T(2) * u * g;
    case UnaryOp::Abs: return sign_of(u) * g;
    case UnaryOp::Sign: return T(0);
    case UnaryOp::Reciprocal: return -g * v * v;
    case UnaryOp::Tanh: return g * (T(1) - v * v);
    case UnaryOp::Sigmoid: return g * v * (T(1) - v);
    case UnaryOp::Relu: return u > T(0) ? g : T(0);
    case UnaryOp::Relu6: return u > T(0) && u < T(6) ? g : T(0);
    case UnaryOp::Elu: return u > T(0) ? g : g * (v + a);
    case UnaryOp::Selu: return u > T(0) ? g * T(kSeluScale) : g * (v + T(kSeluScale * kSeluAlpha));
    case UnaryOp::Softplus: return g * sigmoid_of(u);
    case UnaryOp::Softsign: {
      const T d = T(1) + fabs(u);
      return g / (d * d);
    }
    case UnaryOp::Gelu: {
      const T cdf = T(0.5) * (T(1) + erf(u * T(kInvSqrt2)));
      const T pdf = T(kInvSqrt2Pi) * exp(T(-0.5) * u * u);
      return g * (cdf + u * pdf);
    }
    case UnaryOp::GeluTanh: {
      const T t = tanh(T(kSqrt2OverPi) * (u + T(kGeluC) * u * u * u));
      const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluC) * u * u);
      return g * (T(0.5) * (T(1) + t) + T(0.5) * u * (T(1) - t * t) * du);
    }
    case UnaryOp::Silu: {
      const T s = sigmoid_of(u);
      return g * s * (T(1) + u * (T(1) - s));
    }
    case UnaryOp::Mish: {
      const T t = tanh(softplus_of(u));
      return g * (t + u * (T(1) - t * t) * sigmoid_of(u));
    }
    case UnaryOp::LeakyRelu: return u > T(0) ? g : a * g;
    case UnaryOp::HardSigmoid: {
      const T z = a * u + b;
      return z > T(0) && z < T(1) ? a * g : T(0);
    }
    case UnaryOp::Erf: return g * T(k2OverSqrtPi) * exp(-u * u);
    case UnaryOp::Clip: return u >= a && u <= b ? g : T(0);
    case UnaryOp::LogicalNot: return T(0);
  }
  return T(0);
}

// int32: wrapping arithmetic through uint32, as the CPU.
__device__ inline int32_t unary_i32(UnaryOp op, int32_t v, double lo, double hi) {
  switch (op) {
    case UnaryOp::Neg: return static_cast<int32_t>(0u - static_cast<uint32_t>(v));
    case UnaryOp::Abs: return v < 0 ? static_cast<int32_t>(0u - static_cast<uint32_t>(v)) : v;
    case UnaryOp::Sign: return (v > 0) - (v < 0);
    case UnaryOp::Square: return static_cast<int32_t>(static_cast<uint32_t>(v) * static_cast<uint32_t>(v));
    case UnaryOp::Relu: return v < 0 ? 0 : v;
    case UnaryOp::Relu6: return v < 0 ? 0 : v > 6 ? 6 : v;
    case UnaryOp::Clip: {
      double d = v;
      d = d < lo ? lo : d;
      d = d > hi ? hi : d;
      return convert_to<int32_t>(d);
    }
    default: return 0;
  }
}

template <typename T> __device__ T op_add(T x, T y) { return x + y; }
template <typename T> __device__ T op_sub(T x, T y) { return x - y; }
template <typename T> __device__ T op_mul(T x, T y) { return x * y; }
template <typename T> __device__ T op_div(T x, T y) { return x / y; }
template <typename T> __device__ T op_pow(T x, T y) { return pow(x, y); }
template <> __device__ inline int32_t op_add(int32_t x, int32_t y) { return static_cast<int32_t>(static_cast<uint32_t>(x) + static_cast<uint32_t>(y)); }
template <> __device__ inline int32_t op_sub(int32_t x, int32_t y) { return static_cast<int32_t>(static_cast<uint32_t>(x) - static_cast<uint32_t>(y)); }
template <> __device__ inline int32_t op_mul(int32_t x, int32_t y) { return static_cast<int32_t>(static_cast<uint32_t>(x) * static_cast<uint32_t>(y)); }
template <> __device__ inline int32_t op_div(int32_t x, int32_t y) {
  if (y == 0) return 0;
  if (y == -1) return op_sub<int32_t>(0, x);
  return x / y;
}
template <> __device__ inline int32_t op_pow(int32_t x, int32_t y) {
  if (y < 0) return x == 1 ? 1 : x == -1 ? ((y & 1) ? -1 : 1) : 0;
  uint32_t r = 1, b = static_cast<uint32_t>(x);
  for (uint32_t e = static_cast<uint32_t>(y); e; e >>= 1, b *= b)
    if (e & 1u) r *= b;
  return static_cast<int32_t>(r);
}
template <> __device__ inline uint8_t op_add(uint8_t x, uint8_t y) { return x | y; }
template <> __device__ inline uint8_t op_sub(uint8_t x, uint8_t y) { return x ^ y; }
template <> __device__ inline uint8_t op_mul(uint8_t x, uint8_t y) { return x & y; }
template <> __device__ inline uint8_t op_div(uint8_t x, uint8_t y) { return x & y; }
template <> __device__ inline uint8_t op_pow(uint8_t x, uint8_t y) { return x | (y ^ 1); }

template <typename T>
__device__ T binary_arith(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::Add: return op_add(x, y);
    case BinaryOp::Sub: return op_sub(x, y);
    case BinaryOp::Mul: return op_mul(x, y);
    case BinaryOp::Div: return op_div(x, y);
    case BinaryOp::Pow: return op_pow(x, y);
    case BinaryOp::Maximum: return (x > y || x != x) ? x : y;
    case BinaryOp::Minimum: return (x < y || x != x) ? x : y;
    default: return T(0);
  }
}

__device__ inline uint8_t binary_cmp_f(BinaryOp op, bool lt, bool eq, bool gt, bool xnz, bool ynz) {
  switch (op) {
    case BinaryOp::Equal: return eq;
    case BinaryOp::NotEqual: return !eq;
    case BinaryOp::Less: return lt;
    case BinaryOp::LessEqual: return lt || eq;
    case BinaryOp::Greater: return gt;
    case BinaryOp::GreaterEqual: return gt || eq;
    case BinaryOp::LogicalAnd: return xnz && ynz;
    case BinaryOp::LogicalOr: return xnz || ynz;
    default: return 0;
  }
}

bool is_comparison(BinaryOp op) { return op >= BinaryOp::Equal; }

// ---------------------------------------------------------------------------------- kernels
template <typename D, typename S>
__global__ void convert_kernel(const S* s, D* d, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    d[i] = convert_to<D>(s[i]);
}

template <typename T>
__global__ void fill_kernel(T* d, T v, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    d[i] = v;
}

template <typename T, typename I>
__global__ void broadcast_kernel(const T* s, T* d, BcastPlan p, I n) {
  for (I i = blockIdx.x * I(blockDim.x) + threadIdx.x; i < n; i += I(blockDim.x) * gridDim.x) {
    I off[1];
    bcast_offsets(p, i, 1, off);
    d[i] = s[off[0]];
  }
}

template <typename T>
__global__ void unary_kernel(UnaryOp op, const T* x, T* y, T a, T b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    y[i] = unary_f(op, x[i], a, b);
}

__global__ void unary_i32_kernel(UnaryOp op, const int32_t* x, int32_t* y, double lo, double hi, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    y[i] = unary_i32(op, x[i], lo, hi);
}

template <typename T>
__global__ void logical_not_kernel(const T* x, uint8_t* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    y[i] = x[i] == T(0) ? 1 : 0;
}

template <typename T>
__global__ void unary_backward_kernel(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, T a, T b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    gx[i] = unary_grad(op, x[i], y[i], gy[i], a, b);
}

template <typename T, typename O, typename I>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, O* out, BcastPlan p, I n) {
  for (I i = blockIdx.x * I(blockDim.x) + threadIdx.x; i < n; i += I(blockDim.x) * gridDim.x) {
    I off[2];
    bcast_offsets(p, i, 2, off);
    const T x = a[off[0]], y = b[off[1]];
    if constexpr (std::is_same_v<O, uint8_t> && !std::is_same_v<T, uint8_t>) {
      out[i] = binary_cmp_f(op, x < y, x == y, x > y, x != T(0), y != T(0));
    } else if constexpr (std::is_same_v<T, uint8_t>) {
      // Bool inputs: comparisons and logical ops write Bool, arithmetic is logical (as the CPU).
      out[i] = op >= BinaryOp::Equal ? binary_cmp_f(op, x < y, x == y, x > y, x != 0, y != 0) : binary_arith(op, x, y);
    } else {
      out[i] = binary_arith(op, x, y);
    }
  }
}

template <typename T, typename I>
__global__ void where_kernel(const uint8_t* c, const T* a, const T* b, T* out, BcastPlan p, I n) {
  for (I i = blockIdx.x * I(blockDim.x) + threadIdx.x; i < n; i += I(blockDim.x) * gridDim.x) {
    I off[3];
    bcast_offsets(p, i, 3, off);
    out[i] = c[off[0]] ? a[off[1]] : b[off[2]];
  }
}

// dst (device, dst dtype) = src (device, src dtype), converted.
void convert_on_device(const Tensor& src, Tensor& dst, cudaStream_t s) {
  const int64_t n = src.numel();
  RK_DISPATCH_ALL(src.dtype(), "copy", [&] {
    using S = scalar_t;
    RK_DISPATCH_ALL(dst.dtype(), "copy", [&] {
      using D = scalar_t;
      convert_kernel<D, S><<<grid_for(n), kThreads, 0, s>>>(dptr<S>(src), dptr<D>(dst), n);
      RK_CUDA_CHECK_LAUNCH();
    });
  });
}

// cuDNN activations with the CPU's formulas (NaN propagated, so relu and relu6 keep NaN as the
// CPU does): relu (gradient 0 at 0, as the CPU's x > 0), sigmoid and tanh (gradients from y, as
// the CPU), elu with coef = alpha, relu6 as a relu clipped at coef = 6, silu as swish with beta = 1.
// Everything else (selu, gelu, leaky relu, ...) has no cuDNN mode or another formula.
struct CudnnAct {
  cudnnActivationMode_t mode;
  double coef = 0;
};
bool cudnn_activation(UnaryOp op, const UnaryParams& p, CudnnAct* a) {
  switch (op) {
    case UnaryOp::Relu: *a = {CUDNN_ACTIVATION_RELU, 0}; return true;
    case UnaryOp::Sigmoid: *a = {CUDNN_ACTIVATION_SIGMOID, 0}; return true;
    case UnaryOp::Tanh: *a = {CUDNN_ACTIVATION_TANH, 0}; return true;
    case UnaryOp::Elu: *a = {CUDNN_ACTIVATION_ELU, p.a}; return true;
    case UnaryOp::Relu6: *a = {CUDNN_ACTIVATION_CLIPPED_RELU, 6}; return true;
    case UnaryOp::Silu: *a = {CUDNN_ACTIVATION_SWISH, 0}; return true;
    default: return false;
  }
}

// Runs call(handle, activation desc, tensor desc, byte offset, scale) over x's n elements as flat
// [rows, 1, 1, 1] tensors of at most kCudnnMaxElems elements. Returns false, having done nothing,
// if cuDNN reports the first chunk as not supported (the caller's own kernel runs instead).
template <typename F>
bool run_cudnn_activation(DeviceContext& ctx, const CudnnAct& a, DType t, int64_t n, F&& call) {
  const cudnnDataType_t dt = cudnn_float_type(t, "activation");
  ActivationDesc ad;
  RK_CUDNN_CHECK(cudnnSetActivationDescriptor(ad.d, a.mode, CUDNN_PROPAGATE_NAN, a.coef));
  if (a.mode == CUDNN_ACTIVATION_SWISH) RK_CUDNN_CHECK(cudnnSetActivationDescriptorSwishBeta(ad.d, 1.0));
  TensorDesc td;
  cudnnHandle_t h = ctx.cudnn();
  const CudnnScale sc;
  for (int64_t i = 0; i < n; i += kCudnnMaxElems) {
    const int64_t m = std::min(kCudnnMaxElems, n - i);
    RK_CUDNN_CHECK(cudnnSetTensor4dDescriptor(td.d, CUDNN_TENSOR_NCHW, dt, static_cast<int>(m), 1, 1, 1));
    const cudnnStatus_t st = call(h, ad.d, td.d, static_cast<size_t>(i) * dtype_size(t), sc);
    if (st == CUDNN_STATUS_SUCCESS) continue;
    if (i == 0 && cudnn_not_supported(st)) return false;
    throw_cudnn_error(st, "cudnnActivationForward/Backward", __FILE__, __LINE__);
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------- methods
void CudaBackend::copy(const Tensor& src, Tensor& dst) {
  const int64_t n = src.numel();
  if (n == 0) return;
  const bool src_dev = src.device().type == DeviceType::CUDA, dst_dev = dst.device().type == DeviceType::CUDA;
  if (!src_dev && !dst_dev) throw UnsupportedError("the CUDA backend copies only to or from a CUDA device");
  DeviceContext& c = ctx();
  if (src.dtype() == dst.dtype()) {
    if (src.raw_data() == dst.raw_data()) return;
    if (!src_dev) return c.upload(dst.raw_data(), src.raw_data(), src.nbytes());
    RK_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), src.nbytes(), cudaMemcpyDefault, c.stream()));
    // The host reads what it copied back as soon as copy() returns.
    if (!dst_dev) c.synchronize();
    return;
  }
  if (src_dev && dst_dev) return convert_on_device(src, dst, c.stream());
  if (!src_dev) {  // host -> device: upload as is, convert on the device
    Tensor tmp = Tensor::empty(src.shape(), src.dtype(), device());
    c.upload(tmp.raw_data(), src.raw_data(), src.nbytes());
    convert_on_device(tmp, dst, c.stream());
    return;
  }
  Tensor tmp = Tensor::empty(src.shape(), dst.dtype(), device());  // device -> host: convert, then download
  convert_on_device(src, tmp, c.stream());
  RK_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), tmp.raw_data(), tmp.nbytes(), cudaMemcpyDeviceToHost, c.stream()));
  c.synchronize();
}

void CudaBackend::fill(Tensor& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  cudaStream_t s = ctx().stream();
  RK_DISPATCH_ALL(dst.dtype(), "fill", [&] {
    using D = scalar_t;
    fill_kernel<D><<<grid_for(n), kThreads, 0, s>>>(dptr<D>(dst), convert_to<D>(value), n);
    RK_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::broadcast_to(const Tensor& src, Tensor& dst) {
  if (dst.numel() == src.numel()) return copy(src, dst);
  const int64_t n = dst.numel();
  const Shape* ins[1] = {&src.shape()};
  const BcastPlan p = make_bcast_plan(dst.shape(), ins, 1);
  cudaStream_t s = ctx().stream();
  RK_DISPATCH_ALL(src.dtype(), "broadcast_to", [&] {
    using T = scalar_t;
    with_index_type(fits_u32(n, {src.numel()}), [&](auto idx) {
      using I = decltype(idx);
      broadcast_kernel<T, I><<<grid_for(n), kThreads, 0, s>>>(dptr<T>(src), dptr<T>(dst), p, static_cast<I>(n));
      RK_CUDA_CHECK_LAUNCH();
    });
  });
}

void CudaBackend::unary(UnaryOp op, const Tensor& x, Tensor& y, const UnaryParams& p) {
  const int64_t n = x.numel();
  if (n == 0) return;
  cudaStream_t s = ctx().stream();
  if (op == UnaryOp::LogicalNot) {
    RK_DISPATCH_ALL(x.dtype(), "logical_not", [&] {
      using T = scalar_t;
      logical_not_kernel<T><<<grid_for(n), kThreads, 0, s>>>(dptr<T>(x), dptr<uint8_t>(y), n);
      RK_CUDA_CHECK_LAUNCH();
    });
    return;
  }
  if (x.dtype() == DType::Int32) {
    switch (op) {
      case UnaryOp::Neg: case UnaryOp::Abs: case UnaryOp::Sign: case UnaryOp::Square:
      case UnaryOp::Relu: case UnaryOp::Relu6: case UnaryOp::Clip: break;
      default: throw_dtype_error("unary op", DType::Int32, "float32 or float64");
    }
    unary_i32_kernel<<<grid_for(n), kThreads, 0, s>>>(op, dptr<int32_t>(x), dptr<int32_t>(y), p.a, p.b, n);
    RK_CUDA_CHECK_LAUNCH();
    return;
  }
  CudnnAct act;
  if (is_floating(x.dtype()) && cudnn_activation(op, p, &act) &&
      run_cudnn_activation(ctx(), act, x.dtype(), n,
                           [&](cudnnHandle_t h, cudnnActivationDescriptor_t ad, cudnnTensorDescriptor_t td, size_t off,
                               const CudnnScale& sc) {
                             return cudnnActivationForward(h, ad, sc.one(x.dtype()), td, byte_ptr(x) + off,
                                                           sc.zero(x.dtype()), td, byte_ptr(y) + off);
                           }))
    return;
  RK_DISPATCH_FLOAT(x.dtype(), "unary op", [&] {
    using T = scalar_t;
    unary_kernel<T><<<grid_for(n), kThreads, 0, s>>>(op, dptr<T>(x), dptr<T>(y), T(p.a), T(p.b), n);
    RK_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                                 const UnaryParams& p) {
  const int64_t n = x.numel();
  if (n == 0) return;
  CudnnAct act;
  if (is_floating(x.dtype()) && cudnn_activation(op, p, &act) &&
      run_cudnn_activation(ctx(), act, x.dtype(), n,
                           [&](cudnnHandle_t h, cudnnActivationDescriptor_t ad, cudnnTensorDescriptor_t td, size_t off,
                               const CudnnScale& sc) {
                             return cudnnActivationBackward(h, ad, sc.one(x.dtype()), td, byte_ptr(y) + off, td,
                                                            byte_ptr(gy) + off, td, byte_ptr(x) + off,
                                                            sc.zero(x.dtype()), td, byte_ptr(gx) + off);
                           }))
    return;
  cudaStream_t s = ctx().stream();
  RK_DISPATCH_FLOAT(x.dtype(), "unary op gradient", [&] {
    using T = scalar_t;
    unary_backward_kernel<T><<<grid_for(n), kThreads, 0, s>>>(op, dptr<T>(x), dptr<T>(y), dptr<T>(gy), dptr<T>(gx),
                                                              T(p.a), T(p.b), n);
    RK_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const Shape* ins[2] = {&a.shape(), &b.shape()};
  const BcastPlan p = make_bcast_plan(out.shape(), ins, 2);
  cudaStream_t s = ctx().stream();
  RK_DISPATCH_ALL(a.dtype(), "binary op", [&] {
    using T = scalar_t;
    with_index_type(fits_u32(n, {a.numel(), b.numel()}), [&](auto idx) {
      using I = decltype(idx);
      if (is_comparison(op) || std::is_same_v<T, uint8_t>)
        binary_kernel<T, uint8_t, I><<<grid_for(n), kThreads, 0, s>>>(op, dptr<T>(a), dptr<T>(b), dptr<uint8_t>(out), p,
                                                                      static_cast<I>(n));
      else
        binary_kernel<T, T, I><<<grid_for(n), kThreads, 0, s>>>(op, dptr<T>(a), dptr<T>(b), dptr<T>(out), p,
                                                                static_cast<I>(n));
      RK_CUDA_CHECK_LAUNCH();
    });
  });
}

void CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const Shape* ins[3] = {&cond.shape(), &a.shape(), &b.shape()};
  const BcastPlan p = make_bcast_plan(out.shape(), ins, 3);
  cudaStream_t s = ctx().stream();
  RK_DISPATCH_ALL(a.dtype(), "where", [&] {
    using T = scalar_t;
    with_index_type(fits_u32(n, {cond.numel(), a.numel(), b.numel()}), [&](auto idx) {
      using I = decltype(idx);
      where_kernel<T, I><<<grid_for(n), kThreads, 0, s>>>(dptr<uint8_t>(cond), dptr<T>(a), dptr<T>(b), dptr<T>(out), p,
                                                          static_cast<I>(n));
      RK_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace rk::cuda
