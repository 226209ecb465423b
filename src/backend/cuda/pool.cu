// Max and average pooling over 1 to 3 spatial axes of channels-last data, with the semantics of
// backend/cpu/pool.cpp: padded positions never count, NaN propagates through Max, the gradient
// of Max goes to the first maximum in row-major window order, Avg divides by the real elements.
// cuDNN (CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING, NaN
// propagated) runs every geometry it can express: cuDNN pads symmetrically, so the geometry must
// give the same windows with pad_before on both sides (cuDNN's output extents equal y's). TF's
// "same" padding with an even window puts an extra pad after that changes the output count
// (e.g. window 2, stride 1); those run as the direct kernels below. Explicit padding would not
// help: the padded elements would count as real ones in Avg.
// Differences from the CPU: on ties in a Max window cuDNN picks its own element for the gradient
// (the CPU the first one), and which element of a window holding NaN gets it is not documented.
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.cuh"
#include "backend/cuda/cudnn_desc.cuh"
#include "backend/cuda/kernels.cuh"

namespace rk::cuda {

namespace {

// Geometry with 3 spatial axes; leading unused axes have extent, window and stride 1.
struct Geo3 {
  int64_t n = 1, c = 1;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, win[3] = {1, 1, 1}, str[3] = {1, 1, 1}, pb[3] = {0, 0, 0};
};

Geo3 make_geo(const Tensor& x, const Tensor& y, const WindowGeometry& p) {
  const int r = p.spatial_rank();
  if (r < 1 || r > 3) throw UnsupportedError("pooling over " + std::to_string(r) + " spatial axes on the CUDA backend");
  Geo3 g;
  g.n = x.size(0);
  g.c = x.size(-1);
  const int lead = 3 - r;
  for (int i = 0; i < r; ++i) {
    g.in[lead + i] = x.size(1 + i);
    g.out[lead + i] = y.size(1 + i);
    g.win[lead + i] = p.window[static_cast<size_t>(i)];
    g.str[lead + i] = p.stride[static_cast<size_t>(i)];
    g.pb[lead + i] = p.pad_before[static_cast<size_t>(i)];
  }
  return g;
}

// The clipped window of output element (n, o0, o1, o2): [lo, hi) per axis.
struct Window {
  int64_t lo[3], hi[3], base;
};
__device__ inline Window window_of(const Geo3& g, int64_t i, int64_t* c_out, int64_t* n_out) {
  Window w;
  const int64_t c = i % g.c;
  int64_t r = i / g.c;
  int64_t o[3];
  for (int a = 2; a >= 0; --a) {
    o[a] = r % g.out[a];
    r /= g.out[a];
  }
  for (int a = 0; a < 3; ++a) {
    const int64_t start = o[a] * g.str[a] - g.pb[a];
    w.lo[a] = start < 0 ? 0 : start;
    w.hi[a] = start + g.win[a] < g.in[a] ? start + g.win[a] : g.in[a];
  }
  w.base = r * g.in[0] * g.in[1] * g.in[2] * g.c + c;
  *c_out = c;
  *n_out = r;
  return w;
}

#define RK_WINDOW_LOOP(w, g, off)                            \
  for (int64_t d = w.lo[0]; d < w.hi[0]; ++d)                \
    for (int64_t h = w.lo[1]; h < w.hi[1]; ++h)              \
      for (int64_t v = w.lo[2]; v < w.hi[2]; ++v)            \
        if (const int64_t off = w.base + ((d * g.in[1] + h) * g.in[2] + v) * g.c; true)

template <typename T>
__global__ void pool_forward_kernel(bool is_max, const T* x, T* y, Geo3 g, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t c, n;
    const Window w = window_of(g, i, &c, &n);
    T acc = T(0);
    int64_t cnt = 0;
    RK_WINDOW_LOOP(w, g, off) {
      const T v = x[off];
      if (is_max) acc = cnt == 0 ? v : ((v > acc || v != v) ? v : acc);
      else acc += v;
      ++cnt;
    }
    y[i] = is_max ? acc : acc * (T(1) / static_cast<T>(cnt));
  }
}

template <typename T>
__global__ void pool_backward_kernel(bool is_max, const T* x, const T* y, const T* gy, T* gx, Geo3 g, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t c, n;
    const Window w = window_of(g, i, &c, &n);
    if (is_max) {
      bool done = false;
      RK_WINDOW_LOOP(w, g, off) {
        const T v = x[off];
        if (!done && (v == y[i] || v != v)) {
          atomicAdd(gx + off, gy[i]);  // overlapping windows add
          done = true;
        }
      }
    } else {
      int64_t cnt = 1;
      for (int a = 0; a < 3; ++a) cnt *= w.hi[a] - w.lo[a];
      const T share = gy[i] * (T(1) / static_cast<T>(cnt));
      RK_WINDOW_LOOP(w, g, off) atomicAdd(gx + off, share);
    }
  }
}

// The descriptors of one pooling call through cuDNN.
struct CudnnPool {
  TensorDesc x, y;
  PoolDesc pool;
  bool some_x_uncovered = false;  // some input element lies in no window (its gradient is 0)
};

// Fills c and returns true when cuDNN computes exactly the windows of p (see the file comment).
bool cudnn_pool_setup(CudnnPool& c, PoolMode mode, const Shape& xs, const Shape& ys, const WindowGeometry& p,
                      DType t) {
  const int r = p.spatial_rank();
  if (r < 1 || r > 3 || xs.numel() > kCudnnMaxElems || ys.numel() > kCudnnMaxElems) return false;
  std::vector<int> win, pad, str;
  if (r == 1) {  // the unit height axis
    win.push_back(1);
    pad.push_back(0);
    str.push_back(1);
  }
  for (int i = 0; i < r; ++i) {
    const size_t k = static_cast<size_t>(i);
    // A pad as large as the window could leave a window with no real element (cuDNN rejects it).
    if (p.pad_before[k] >= p.window[k]) return false;
    win.push_back(static_cast<int>(p.window[k]));
    pad.push_back(static_cast<int>(p.pad_before[k]));
    str.push_back(static_cast<int>(p.stride[k]));
    // Input past the last window, or between windows, gets no gradient.
    const int64_t last_end = (ys[1 + i] - 1) * p.stride[k] - p.pad_before[k] + p.window[k];
    if (p.stride[k] > p.window[k] || last_end < xs[1 + i]) c.some_x_uncovered = true;
  }
  const cudnnDataType_t dt = cudnn_float_type(t, "pool");
  set_channels_last(c.x.d, xs, dt);
  set_channels_last(c.y.d, ys, dt);
  RK_CUDNN_CHECK(cudnnSetPoolingNdDescriptor(
      c.pool.d, mode == PoolMode::Max ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING,
      CUDNN_PROPAGATE_NAN, static_cast<int>(win.size()), win.data(), pad.data(), str.data()));
  std::vector<int> od(win.size() + 2);
  RK_CUDNN_CHECK(cudnnGetPoolingNdForwardOutputDim(c.pool.d, c.x.d, static_cast<int>(od.size()), od.data()));
  return od == channels_last_dims(ys);
}

}  // namespace

void CudaBackend::pool_forward(PoolMode mode, const Tensor& x, Tensor& y, const WindowGeometry& p) {
  const int64_t total = y.numel();
  if (total == 0) return;
  DeviceContext& cx = ctx();
  CudnnPool cp;
  if (cudnn_pool_setup(cp, mode, x.shape(), y.shape(), p, x.dtype())) {
    const CudnnScale sc;
    const cudnnStatus_t st = cudnnPoolingForward(cx.cudnn(), cp.pool.d, sc.one(x.dtype()), cp.x.d, x.raw_data(),
                                                 sc.zero(x.dtype()), cp.y.d, y.raw_data());
    if (st == CUDNN_STATUS_SUCCESS) return;
    if (!cudnn_not_supported(st)) throw_cudnn_error(st, "cudnnPoolingForward", __FILE__, __LINE__);
  }
  const Geo3 g = make_geo(x, y, p);
  RK_DISPATCH_FLOAT(x.dtype(), "pool", [&] {
    using T = scalar_t;
    pool_forward_kernel<T><<<grid_for(total), kThreads, 0, cx.stream()>>>(mode == PoolMode::Max, dptr<T>(x),
                                                                          dptr<T>(y), g, total);
    RK_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::pool_backward(PoolMode mode, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                                const WindowGeometry& p) {
  if (gx.numel() == 0) return;
  const int64_t total = y.numel();
  if (total == 0) return fill(gx, 0.0);
  DeviceContext& cx = ctx();
  CudnnPool cp;
  if (cudnn_pool_setup(cp, mode, x.shape(), y.shape(), p, x.dtype())) {
    // Where some input lies in no window, gx starts at zero and cuDNN adds into it (beta = 1), so
    // the result does not rest on cuDNN writing the elements no window reaches.
    if (cp.some_x_uncovered) fill(gx, 0.0);
    const CudnnScale sc;
    const DType t = x.dtype();
    const cudnnStatus_t st = cudnnPoolingBackward(cx.cudnn(), cp.pool.d, sc.one(t), cp.y.d, y.raw_data(), cp.y.d,
                                                  gy.raw_data(), cp.x.d, x.raw_data(),
                                                  cp.some_x_uncovered ? sc.one(t) : sc.zero(t), cp.x.d, gx.raw_data());
    if (st == CUDNN_STATUS_SUCCESS) return;
    if (!cudnn_not_supported(st)) throw_cudnn_error(st, "cudnnPoolingBackward", __FILE__, __LINE__);
  }
  fill(gx, 0.0);  // gx is overwritten; windows then add into it
  const Geo3 g = make_geo(x, y, p);
  RK_DISPATCH_FLOAT(x.dtype(), "pool gradient", [&] {
    using T = scalar_t;
    pool_backward_kernel<T><<<grid_for(total), kThreads, 0, cx.stream()>>>(mode == PoolMode::Max, dptr<T>(x),
                                                                           dptr<T>(y), dptr<T>(gy), dptr<T>(gx), g,
                                                                           total);
    RK_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace rk::cuda
