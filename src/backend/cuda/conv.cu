// Convolution through cuDNN on channels-last data: x [N, *in, Cin] and y [N, *out, Cout] as NHWC
// (NDHWC) tensors, the Keras kernel [*window, Cin/g, Cout] permuted to cuDNN's KRSC filter layout.
// cuDNN pads symmetrically only: an asymmetric pad (TF "same" puts the odd one after) pads x
// explicitly first. One spatial axis runs as 2D with height 1. TF32 follows config (off by default).
// Algorithms come from cuDNN's heuristics (cudnnGet*Algorithm_v7) or, with cudnn_benchmark() on,
// from timing them (cudnnFind*AlgorithmEx), chosen once per problem and cached; workspaces come
// from the caching allocator.
#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "backend/cuda/cuda_api.h"
#include "backend/cuda/cuda_backend.cuh"
#include "backend/cuda/cudnn_desc.cuh"
#include "backend/cuda/kernels.cuh"

namespace rk::cuda {

namespace {

// Everything one convolution call needs, built from the shapes and the parameters.
struct ConvSetup {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  cudnnDataType_t dt = CUDNN_DATA_FLOAT;
  bool explicit_pad = false;  // x must be padded by hand (asymmetric padding)
  bool fma_only = false;      // float32 with TF32 off: cuDNN may use FMA kernels only
  Shape padded;               // shape of the padded x when explicit_pad
  std::string key;            // identifies the problem in the algorithm cache (without the direction)
};

void setup(ConvSetup& c, const Shape& xs, const Shape& ws, const Shape& ys, const ConvParams& p, DType t, int device) {
  const int r = p.spatial_rank();
  if (r < 1 || r > 3) throw UnsupportedError("convolution over " + std::to_string(r) + " spatial axes on the CUDA backend");
  for (const Shape* s : {&xs, &ws, &ys})
    if (s->numel() > kCudnnMaxElems)
      throw UnsupportedError("conv: tensor " + s->str() + " has more elements than cuDNN's 32-bit extents allow");
  c.dt = cudnn_float_type(t, "conv");
  for (int i = 0; i < r; ++i)
    if (p.pad_before[static_cast<size_t>(i)] != p.pad_after[static_cast<size_t>(i)]) c.explicit_pad = true;
  Shape xin = xs;
  if (c.explicit_pad) {
    std::vector<int64_t> d = xs.dims();
    for (int i = 0; i < r; ++i) d[static_cast<size_t>(1 + i)] += p.pad_before[static_cast<size_t>(i)] + p.pad_after[static_cast<size_t>(i)];
    c.padded = Shape(d);
    xin = c.padded;
  }
  set_channels_last(c.x.d, xin, c.dt);
  set_channels_last(c.y.d, ys, c.dt);
  // Filter [K, C/g, (1,) window...] in NHWC (KRSC) layout.
  std::vector<int> fd = {static_cast<int>(ws[-1]), static_cast<int>(ws[-2])};
  if (r == 1) fd.push_back(1);
  for (int i = 0; i < r; ++i) fd.push_back(static_cast<int>(ws[i]));
  RK_CUDNN_CHECK(cudnnSetFilterNdDescriptor(c.w.d, c.dt, CUDNN_TENSOR_NHWC, static_cast<int>(fd.size()), fd.data()));
  std::vector<int> pad, stride, dil;
  if (r == 1) {
    pad.push_back(0);
    stride.push_back(1);
    dil.push_back(1);
  }
  for (int i = 0; i < r; ++i) {
    const size_t k = static_cast<size_t>(i);
    pad.push_back(c.explicit_pad ? 0 : static_cast<int>(p.pad_before[k]));
    stride.push_back(static_cast<int>(p.stride[k]));
    dil.push_back(static_cast<int>(p.dilation[k]));
  }
  RK_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(c.conv.d, static_cast<int>(pad.size()), pad.data(), stride.data(),
                                                 dil.data(), CUDNN_CROSS_CORRELATION, c.dt));
  RK_CUDNN_CHECK(cudnnSetConvolutionGroupCount(c.conv.d, static_cast<int>(p.groups)));
  // FMA math keeps float32 off TF32 tensor cores unless TF32 was switched on (CUDNN_DEFAULT_MATH
  // permits TF32 on Ampere and newer; so does CUDNN_TENSOR_OP_MATH).
  c.fma_only = t == DType::Float32 && !allow_tf32();
  RK_CUDNN_CHECK(cudnnSetConvolutionMathType(c.conv.d, c.fma_only ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH));
  // The output extents cuDNN derives must be the ones the ops layer allocated.
  std::vector<int> od(fd.size());
  RK_CUDNN_CHECK(cudnnGetConvolutionNdForwardOutputDim(c.conv.d, c.x.d, c.w.d, static_cast<int>(od.size()), od.data()));
  if (od != channels_last_dims(ys)) throw ShapeError("conv: cuDNN's output extents differ from the output " + ys.str());
  std::string key = "dev" + std::to_string(device) + (t == DType::Float64 ? " f64" : " f32") + (c.fma_only ? " fma" : " tf32");
  key += " " + xin.str() + " " + ws.str() + " " + ys.str();
  for (size_t i = 0; i < pad.size(); ++i)
    key += " " + std::to_string(pad[i]) + "/" + std::to_string(stride[i]) + "/" + std::to_string(dil[i]);
  c.key = key + " g" + std::to_string(p.groups) + (cudnn_benchmark() ? " timed" : " heuristic");
}

// The algorithm, math type and workspace chosen for one problem of one direction.
struct AlgoChoice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

// Chosen algorithms by direction + problem key: cuDNN's heuristic query costs tens of
// microseconds to milliseconds, and training repeats the same few shapes every step.
std::mutex g_algo_mu;
std::map<std::string, AlgoChoice>& algo_cache() {
  static auto* m = new std::map<std::string, AlgoChoice>();  // never destroyed (R may run late)
  return *m;
}

// Device scratch for cuDNN from the caching allocator (stream-ordered, so it may be released
// as soon as the call is queued); undefined for 0 bytes.
Tensor workspace(size_t bytes, Device d) {
  return bytes ? Tensor::empty(Shape({static_cast<int64_t>(bytes)}), DType::Bool, d) : Tensor();
}

// Scratch for timing algorithms (cudnnFind*AlgorithmEx, which blocks until its runs finished):
// half the device's free memory, at most 1 GiB, straight from cudaMalloc and freed right after, so
// a one-off gigabyte does not stay in the allocator's cache. Algorithms needing more are reported
// as failed and skipped; bytes is 0 when nothing could be had.
struct FindScratch {
  void* p = nullptr;
  size_t bytes = 0;
  FindScratch() {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) cudaGetLastError();
    for (bytes = std::min<size_t>(free_b / 2, size_t(1) << 30); bytes >= (size_t(1) << 20); bytes /= 2) {
      if (cudaMalloc(&p, bytes) == cudaSuccess) return;
      cudaGetLastError();
      p = nullptr;
    }
    bytes = 0;
  }
  ~FindScratch() {
    if (p) cudaFree(p);
  }
  FindScratch(const FindScratch&) = delete;
  FindScratch& operator=(const FindScratch&) = delete;
};

// Picks the first algorithm in cuDNN's order (heuristic, or measured time when benchmarking) that
// succeeds, runs under the allowed math type, has a workspace size and is not in `rejected`: get(perf, n)
// fills perf with up to n candidates and returns the count; ws(algo, &bytes) asks the workspace of
// one with the descriptor's math type set; what() describes the operands for the error. Leaves
// the chosen math type set on c.conv.
template <typename Perf, typename Get, typename Ws, typename What>
AlgoChoice choose_algo(const char* direction, ConvSetup& c, Get get, Ws ws, What what,
                       const std::vector<int>& rejected) {
  Perf perf[16];
  const int n = get(perf, 16);
  for (int i = 0; i < n; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (std::find(rejected.begin(), rejected.end(), static_cast<int>(perf[i].algo)) != rejected.end()) continue;
    // The math type cuDNN rated the algorithm with, except that float32 stays on FMA without TF32.
    const cudnnMathType_t math = c.fma_only ? CUDNN_FMA_MATH : perf[i].mathType;
    if (cudnnSetConvolutionMathType(c.conv.d, math) != CUDNN_STATUS_SUCCESS) continue;
    size_t bytes = 0;
    if (ws(perf[i].algo, &bytes) != CUDNN_STATUS_SUCCESS) continue;
    return AlgoChoice{static_cast<int>(perf[i].algo), math, bytes};
  }
  throw UnsupportedError(std::string(direction) + ": cuDNN has no usable algorithm for " + what());
}

// Runs one convolution direction with the cached algorithm of its problem, choosing (and caching)
// one on first use. run(choice, workspace_ptr) queues the cuDNN call and returns its status; an
// algorithm cuDNN then refuses (a "not supported" status, e.g. under the FMA-only math type) is
// dropped and the next candidate tried, so a bad heuristic pick costs one retry, not an error.
template <typename Perf, typename Get, typename Ws, typename What, typename Run>
void convolve(const char* direction, ConvSetup& c, Device dev, Get get, Ws ws, What what, Run run) {
  const std::string key = std::string(direction) + " " + c.key;
  std::vector<int> rejected;
  for (;;) {
    AlgoChoice a;
    bool cached = false;
    {
      std::lock_guard<std::mutex> lock(g_algo_mu);
      auto it = algo_cache().find(key);
      if (it != algo_cache().end()) {
        a = it->second;
        cached = true;
      }
    }
    if (cached) {
      RK_CUDNN_CHECK(cudnnSetConvolutionMathType(c.conv.d, a.math));
    } else {
      a = choose_algo<Perf>(direction, c, get, ws, what, rejected);
      std::lock_guard<std::mutex> lock(g_algo_mu);
      algo_cache()[key] = a;
    }
    Tensor scratch = workspace(a.workspace, dev);
    const cudnnStatus_t st = run(a, scratch.defined() ? scratch.raw_data() : nullptr);
    if (st == CUDNN_STATUS_SUCCESS) return;
    if (!cudnn_not_supported(st)) throw_cudnn_error(st, direction, __FILE__, __LINE__);
    rejected.push_back(a.algo);
    std::lock_guard<std::mutex> lock(g_algo_mu);
    algo_cache().erase(key);
  }
}

// Keras kernel [*window, Cin/g, Cout] <-> cuDNN filter [Cout, *window, Cin/g].
std::vector<int> to_krsc(int r) {
  std::vector<int> perm = {r + 1};
  for (int i = 0; i <= r; ++i) perm.push_back(i);
  return perm;
}
std::vector<int> from_krsc(int r) {
  std::vector<int> perm;
  for (int i = 1; i <= r + 1; ++i) perm.push_back(i);
  perm.push_back(0);
  return perm;
}
Shape permuted(const Shape& s, const std::vector<int>& perm) {
  std::vector<int64_t> d;
  for (int p : perm) d.push_back(s[p]);
  return Shape(d);
}

// y = relu?(y + bias) over channels-last y with c channels. The channel of element i is tracked
// incrementally along the grid-stride loop: a 64-bit i % c per element would cost more than the
// memory traffic of this kernel.
template <typename T>
__global__ void bias_relu_kernel(T* y, const T* bias, int64_t c, int64_t n, bool relu) {
  const int64_t step = int64_t(blockDim.x) * gridDim.x, step_c = step % c;
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  int64_t ch = i % c;
  for (; i < n; i += step) {
    T v = y[i];
    if (bias) v += bias[ch];
    if (relu) v = v < T(0) ? T(0) : v;
    y[i] = v;
    ch += step_c;
    if (ch >= c) ch -= c;
  }
}

}  // namespace

namespace {

// Where the unpadded input starts inside the explicitly padded one: [0, pad_before..., 0].
std::vector<int64_t> pad_offsets(int rank, const ConvParams& p) {
  std::vector<int64_t> start(static_cast<size_t>(rank), 0);
  for (int i = 0; i < p.spatial_rank(); ++i) start[static_cast<size_t>(1 + i)] = p.pad_before[static_cast<size_t>(i)];
  return start;
}

// x copied into a zeroed buffer of shape s.padded (cuDNN pads symmetrically only).
Tensor padded_input(CudaBackend& b, const Tensor& x, const ConvSetup& s, const ConvParams& p) {
  Tensor xin = Tensor::empty(s.padded, x.dtype(), b.device());
  b.fill(xin, 0.0);
  b.copy_region(x, std::vector<int64_t>(static_cast<size_t>(x.rank()), 0), xin, pad_offsets(x.rank(), p),
                x.shape().dims(), false);
  return xin;
}

// The Keras kernel [spatial..., in, out] permuted to cuDNN's KRSC layout.
Tensor krsc_weights(CudaBackend& b, const Tensor& w, int r) {
  Tensor wk = Tensor::empty(permuted(w.shape(), to_krsc(r)), w.dtype(), b.device());
  b.permute(w, to_krsc(r), wk);
  return wk;
}

}  // namespace

void CudaBackend::conv_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, const ConvParams& p,
                               bool relu) {
  if (y.numel() == 0) return;
  DeviceContext& c = ctx();
  const DType t = x.dtype();
  ConvSetup s;
  setup(s, x.shape(), w.shape(), y.shape(), p, t, device().index);
  const int r = p.spatial_rank();
  const Tensor wk = krsc_weights(*this, w, r);
  const Tensor xin = s.explicit_pad ? padded_input(*this, x, s, p) : x;
  cudnnHandle_t h = c.cudnn();
  const CudnnScale sc;
  convolve<cudnnConvolutionFwdAlgoPerf_t>(
      "conv_forward", s, device(),
      [&](cudnnConvolutionFwdAlgoPerf_t* perf, int req) {
        int n = 0;
        if (cudnn_benchmark()) {  // y is this call's output: the timing runs may write it
          FindScratch scratch;
          RK_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, s.x.d, xin.raw_data(), s.w.d, wk.raw_data(), s.conv.d,
                                                                s.y.d, y.raw_data(), req, &n, perf,
                                                                scratch.p, scratch.bytes));
        } else {
          RK_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, s.x.d, s.w.d, s.conv.d, s.y.d, req, &n, perf));
        }
        return n;
      },
      [&](cudnnConvolutionFwdAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionForwardWorkspaceSize(h, s.x.d, s.w.d, s.conv.d, s.y.d, algo, bytes);
      },
      [&] { return x.str() + " * " + w.str(); },
      [&](const AlgoChoice& a, void* ws) {
        return cudnnConvolutionForward(h, sc.one(t), s.x.d, xin.raw_data(), s.w.d, wk.raw_data(), s.conv.d,
                                       static_cast<cudnnConvolutionFwdAlgo_t>(a.algo), ws, a.workspace, sc.zero(t),
                                       s.y.d, y.raw_data());
      });
  if (bias.defined() || relu) {
    const int64_t total = y.numel(), ch = y.size(-1);
    RK_DISPATCH_FLOAT(t, "conv bias", [&] {
      using T = scalar_t;
      bias_relu_kernel<T><<<grid_for(total), kThreads, 0, c.stream()>>>(
          dptr<T>(y), bias.defined() ? dptr<T>(bias) : nullptr, ch, total, relu);
      RK_CUDA_CHECK_LAUNCH();
    });
  }
}

void CudaBackend::conv_backward_data(const Tensor& gy, const Tensor& w, Tensor& gx, const ConvParams& p) {
  if (gx.numel() == 0) return;
  if (gy.numel() == 0) return fill(gx, 0.0);
  DeviceContext& c = ctx();
  const DType t = gx.dtype();
  ConvSetup s;
  setup(s, gx.shape(), w.shape(), gy.shape(), p, t, device().index);
  const int r = p.spatial_rank();
  const Tensor wk = krsc_weights(*this, w, r);
  Tensor gxin = s.explicit_pad ? Tensor::empty(s.padded, t, device()) : gx;
  cudnnHandle_t h = c.cudnn();
  const CudnnScale sc;
  convolve<cudnnConvolutionBwdDataAlgoPerf_t>(
      "conv_backward_data", s, device(),
      [&](cudnnConvolutionBwdDataAlgoPerf_t* perf, int req) {
        int n = 0;
        if (cudnn_benchmark()) {
          FindScratch scratch;
          RK_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, s.w.d, wk.raw_data(), s.y.d, gy.raw_data(),
                                                                     s.conv.d, s.x.d, gxin.raw_data(), req, &n, perf,
                                                                     scratch.p, scratch.bytes));
        } else {
          RK_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, s.w.d, s.y.d, s.conv.d, s.x.d, req, &n, perf));
        }
        return n;
      },
      [&](cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(h, s.w.d, s.y.d, s.conv.d, s.x.d, algo, bytes);
      },
      [&] { return gy.str() + " * " + w.str(); },
      [&](const AlgoChoice& a, void* ws) {
        return cudnnConvolutionBackwardData(h, sc.one(t), s.w.d, wk.raw_data(), s.y.d, gy.raw_data(), s.conv.d,
                                            static_cast<cudnnConvolutionBwdDataAlgo_t>(a.algo), ws, a.workspace,
                                            sc.zero(t), s.x.d, gxin.raw_data());
      });
  if (s.explicit_pad)  // the gradient of the padding itself is dropped
    copy_region(gxin, pad_offsets(gx.rank(), p), gx, std::vector<int64_t>(static_cast<size_t>(gx.rank()), 0),
                gx.shape().dims(), false);
}

void CudaBackend::conv_backward_filter(const Tensor& x, const Tensor& gy, Tensor& gw, const ConvParams& p) {
  if (gw.numel() == 0) return;
  if (gy.numel() == 0 || x.numel() == 0) return fill(gw, 0.0);
  DeviceContext& c = ctx();
  const DType t = x.dtype();
  ConvSetup s;
  setup(s, x.shape(), gw.shape(), gy.shape(), p, t, device().index);
  const int r = p.spatial_rank();
  const Tensor xin = s.explicit_pad ? padded_input(*this, x, s, p) : x;
  Tensor gwk = Tensor::empty(permuted(gw.shape(), to_krsc(r)), t, device());
  cudnnHandle_t h = c.cudnn();
  const CudnnScale sc;
  convolve<cudnnConvolutionBwdFilterAlgoPerf_t>(
      "conv_backward_filter", s, device(),
      [&](cudnnConvolutionBwdFilterAlgoPerf_t* perf, int req) {
        int n = 0;
        if (cudnn_benchmark()) {
          FindScratch scratch;
          RK_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, s.x.d, xin.raw_data(), s.y.d, gy.raw_data(),
                                                                       s.conv.d, s.w.d, gwk.raw_data(), req, &n, perf,
                                                                       scratch.p, scratch.bytes));
        } else {
          RK_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, s.x.d, s.y.d, s.conv.d, s.w.d, req, &n, perf));
        }
        return n;
      },
      [&](cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, s.x.d, s.y.d, s.conv.d, s.w.d, algo, bytes);
      },
      [&] { return x.str() + ", " + gy.str(); },
      [&](const AlgoChoice& a, void* ws) {
        return cudnnConvolutionBackwardFilter(h, sc.one(t), s.x.d, xin.raw_data(), s.y.d, gy.raw_data(), s.conv.d,
                                              static_cast<cudnnConvolutionBwdFilterAlgo_t>(a.algo), ws, a.workspace,
                                              sc.zero(t), s.w.d, gwk.raw_data());
      });
  permute(gwk, from_krsc(r), gw);
}

}  // namespace rk::cuda
