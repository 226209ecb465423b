// CUDA reductions, arg-reductions, softmax and the fused losses, with the CPU backend's
// semantics: double (int64 for integers) accumulators, NaN propagation, the first index wins.
// Summation order differs from the CPU's, so sums agree to rounding, not bit for bit.
// softmax / log_softmax and their gradients go through cuDNN (which accumulates in the data's
// precision, float for float32); the fused cross-entropy losses stay own kernels, since cuDNN
// has no fused softmax + loss and they keep the CPU's double accumulation.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "backend/cuda/cuda_backend.cuh"
#include "backend/cuda/cudnn_desc.cuh"
#include "backend/cuda/kernels.cuh"

namespace rk::cuda {

namespace {

template <typename T>
using acc_t = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <typename A> __device__ bool is_nan(A v) {
  if constexpr (std::is_floating_point_v<A>) return v != v;
  else return false;
}

template <typename A> __device__ A identity(ReduceOp op) {
  if (op == ReduceOp::Prod) return A(1);
  // A is double or int64_t (numeric_limits is host-only in device code).
  if (op == ReduceOp::Max || op == ReduceOp::LogSumExp)
    return std::is_floating_point_v<A> ? A(-INFINITY) : A(-9223372036854775807LL - 1);
  if (op == ReduceOp::Min) return std::is_floating_point_v<A> ? A(INFINITY) : A(9223372036854775807LL);
  return A(0);
}

template <typename A> __device__ A combine(ReduceOp op, A acc, A v) {
  switch (op) {
    case ReduceOp::Sum: case ReduceOp::Mean: return acc + v;
    case ReduceOp::Prod:
      if constexpr (std::is_integral_v<A>) return static_cast<A>(static_cast<uint64_t>(acc) * static_cast<uint64_t>(v));
      else return acc * v;
    case ReduceOp::Max: case ReduceOp::LogSumExp: return (v > acc || is_nan(v)) ? v : acc;
    case ReduceOp::Min: return (v < acc || is_nan(v)) ? v : acc;
  }
  return acc;
}

template <typename T, typename A> __device__ T to_out(A v) {
  if constexpr (std::is_same_v<T, uint8_t>) return static_cast<T>(v != 0);
  else return static_cast<T>(v);
}

/// x viewed as kept axes (one output each) and reduced axes.
struct ReducePlan {
  int nk = 0, nr = 0;
  int64_t kdims[kMaxDims], kst[kMaxDims];
  int64_t rdims[kMaxDims], rst[kMaxDims];
  int64_t nred = 1;
};

// Offset of element i (< product of dims) of a merged index space; the outermost axis takes the
// quotient without a 64-bit division, so one merged axis costs none.
__device__ inline int64_t plan_offset(const int64_t* dims, const int64_t* st, int nd, int64_t i) {
  if (nd == 0) return 0;
  int64_t off = 0;
  for (int d = nd - 1; d > 0; --d) {
    off += (i % dims[d]) * st[d];
    i /= dims[d];
  }
  return off + i * st[0];
}

template <typename T, typename A> __device__ T finish(ReduceOp op, A acc, int64_t nred) {
  if (op == ReduceOp::Mean) return to_out<T>(static_cast<double>(acc) / static_cast<double>(nred));
  return to_out<T>(acc);
}

// Block-wide reduction of one value per thread in shared memory; thread 0 gets the result.
template <typename A>
__device__ A block_reduce(ReduceOp op, A v, A* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = combine(op, sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  A r = sh[0];
  __syncthreads();
  return r;
}

// Row reduction: block (blockIdx.x) reduces output blockIdx.x over the reduced index range
// [blockIdx.y * chunk, +chunk). With several splits (gridDim.y > 1) each block writes its partial
// accumulator to part[blockIdx.y * nout + o] and reduce_finish_kernel combines them; LogSumExp
// (two passes over the data) always runs with one split.
template <typename T>
__global__ void reduce_rows_kernel(ReduceOp op, const T* x, T* out, acc_t<T>* part, ReducePlan p, int64_t chunk) {
  using A = acc_t<T>;
  extern __shared__ unsigned char smem[];
  A* sh = reinterpret_cast<A*>(smem);
  const int64_t o = blockIdx.x;
  const int64_t base = plan_offset(p.kdims, p.kst, p.nk, o);
  const int64_t r0 = blockIdx.y * chunk, r1 = r0 + chunk < p.nred ? r0 + chunk : p.nred;
  const ReduceOp first = op == ReduceOp::LogSumExp ? ReduceOp::Max : op;
  A acc = identity<A>(first);
  for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x)
    acc = combine(first, acc, static_cast<A>(x[base + plan_offset(p.rdims, p.rst, p.nr, r)]));
  acc = block_reduce(first, acc, sh);
  if (part) {
    if (threadIdx.x == 0) part[blockIdx.y * int64_t(gridDim.x) + o] = acc;
    return;
  }
  if (op == ReduceOp::LogSumExp) {
    if constexpr (std::is_floating_point_v<T>) {
      const A mx = acc;
      if (isinf(mx) || isnan(mx)) {
        if (threadIdx.x == 0) out[o] = static_cast<T>(mx);
        return;
      }
      const T m = static_cast<T>(mx);  // exp in the input's precision, as the CPU
      A s = 0;
      for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x)
        s += static_cast<A>(exp(x[base + plan_offset(p.rdims, p.rst, p.nr, r)] - m));
      s = block_reduce(ReduceOp::Sum, s, sh);
      if (threadIdx.x == 0) out[o] = static_cast<T>(mx + log(s));
    }
    return;
  }
  if (threadIdx.x == 0) out[o] = finish<T>(op, acc, p.nred);
}

// Column reduction for a contiguous innermost kept axis of extent kc (e.g. the bias gradient: sum
// of [N*H*W, C] over the rows): a block is 32 columns x kColRows row lanes, so a warp reads 32
// consecutive elements; blockIdx.x = outer kept index * tiles + column tile, blockIdx.y = split of
// the reduced range (partials as in reduce_rows_kernel). One thread per output looping over the
// rows would read with a stride of kc elements and leave most of the GPU idle for small kc.
constexpr int kColRows = 8;
template <typename T>
__global__ void reduce_cols_kernel(ReduceOp op, const T* x, T* out, acc_t<T>* part, ReducePlan p, int64_t kc,
                                   int64_t tiles, int64_t chunk, int64_t nout) {
  using A = acc_t<T>;
  __shared__ A sh[kColRows][32];
  const int64_t ko = blockIdx.x / tiles, k = (blockIdx.x % tiles) * 32 + threadIdx.x;
  const bool valid = k < kc;
  const int64_t o = ko * kc + k;
  const int64_t base = plan_offset(p.kdims, p.kst, p.nk - 1, ko) + k;  // the last kept axis has stride 1
  const int64_t r0 = blockIdx.y * chunk, r1 = r0 + chunk < p.nred ? r0 + chunk : p.nred;
  const ReduceOp first = op == ReduceOp::LogSumExp ? ReduceOp::Max : op;
  A acc = identity<A>(first);
  if (valid)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kColRows)
      acc = combine(first, acc, static_cast<A>(x[base + plan_offset(p.rdims, p.rst, p.nr, r)]));
  // Combine the kColRows lanes of each column.
  auto column_reduce = [&](ReduceOp how, A v) {
    sh[threadIdx.y][threadIdx.x] = v;
    __syncthreads();
    for (int s = kColRows / 2; s > 0; s >>= 1) {
      if (threadIdx.y < s) sh[threadIdx.y][threadIdx.x] = combine(how, sh[threadIdx.y][threadIdx.x], sh[threadIdx.y + s][threadIdx.x]);
      __syncthreads();
    }
    const A r = sh[0][threadIdx.x];
    __syncthreads();
    return r;
  };
  acc = column_reduce(first, acc);
  if (part) {
    if (threadIdx.y == 0 && valid) part[blockIdx.y * nout + o] = acc;
    return;
  }
  if (op == ReduceOp::LogSumExp) {
    if constexpr (std::is_floating_point_v<T>) {
      const A mx = acc;
      const bool special = isinf(mx) || isnan(mx);
      const T m = static_cast<T>(mx);
      A s = 0;
      if (valid && !special)
        for (int64_t r = r0 + threadIdx.y; r < r1; r += kColRows)
          s += static_cast<A>(exp(x[base + plan_offset(p.rdims, p.rst, p.nr, r)] - m));
      s = column_reduce(ReduceOp::Sum, s);
      if (threadIdx.y == 0 && valid) out[o] = static_cast<T>(special ? mx : mx + log(s));
    }
    return;
  }
  if (threadIdx.y == 0 && valid) out[o] = finish<T>(op, acc, p.nred);
}

// out[o] = the combination of the `splits` partial accumulators of output o.
template <typename T>
__global__ void reduce_finish_kernel(ReduceOp op, const acc_t<T>* part, T* out, int64_t nout, int64_t splits,
                                     int64_t nred) {
  using A = acc_t<T>;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < nout; o += int64_t(blockDim.x) * gridDim.x) {
    A acc = part[o];
    for (int64_t s = 1; s < splits; ++s) acc = combine(op, acc, part[s * nout + o]);
    out[o] = finish<T>(op, acc, nred);
  }
}

template <typename T>
__global__ void arg_reduce_kernel(bool is_max, const T* x, int32_t* out, int64_t outer, int64_t n, int64_t inner) {
  using A = acc_t<T>;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < outer * inner;
       t += int64_t(blockDim.x) * gridDim.x) {
    const int64_t o = t / inner, j = t % inner;
    const T* p = x + o * n * inner + j;
    int64_t best_i = 0;
    A best = static_cast<A>(p[0]);
    for (int64_t i = 1; i < n; ++i) {
      const A cur = static_cast<A>(p[i * inner]);
      if (is_max) {
        if (is_nan(best)) break;
        if (cur > best || is_nan(cur)) { best = cur; best_i = i; }
      } else if (cur < best || (is_nan(best) && !is_nan(cur))) {
        best = cur;
        best_i = i;
      }
    }
    out[t] = static_cast<int32_t>(best_i);
  }
}

// The fused losses run one warp per row when a row has at most kWarpRowMax classes and one block
// per row beyond (1000-class rows would leave most of the GPU idle with a thread per row). The
// partial results combine in a fixed order, so a row's result does not depend on the launch.
constexpr int64_t kWarpRowMax = 1024;
constexpr int kWarp = 32;

struct SumOp {
  template <typename A> __device__ A operator()(A a, A b) const { return a + b; }
};
// fmax skips NaN as the CPU's std::max(mx, x) does (a NaN logit still makes its row NaN via exp).
struct MaxOp {
  template <typename A> __device__ A operator()(A a, A b) const { return fmax(a, b); }
};

template <typename A, typename Op>
__device__ A warp_all_reduce(A v, Op op) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Every thread of the block gets the same result (the warps' partials combine in warp order);
// sh holds one double per warp and may be reused by the next call.
template <typename A, typename Op>
__device__ A block_all_reduce(A v, Op op, double* sh) {
  v = warp_all_reduce(v, op);
  const int warp = static_cast<int>(threadIdx.x) / kWarp, nwarps = static_cast<int>(blockDim.x) / kWarp;
  __syncthreads();  // the previous call's reads of sh are done
  if (threadIdx.x % kWarp == 0) sh[warp] = static_cast<double>(v);
  __syncthreads();
  A r = static_cast<A>(sh[0]);
  for (int w = 1; w < nwarps; ++w) r = op(r, static_cast<A>(sh[w]));
  return r;
}

// A row handled by a group of threads: one warp, or the whole block.
template <bool kBlock>
struct RowGroup {
  double* sh;
  __device__ int lane() const { return kBlock ? static_cast<int>(threadIdx.x) : static_cast<int>(threadIdx.x) % kWarp; }
  __device__ int size() const { return kBlock ? static_cast<int>(blockDim.x) : kWarp; }
  __device__ int64_t first_row() const {
    return kBlock ? blockIdx.x : blockIdx.x * int64_t(blockDim.x / kWarp) + threadIdx.x / kWarp;
  }
  __device__ int64_t row_stride() const { return kBlock ? gridDim.x : int64_t(gridDim.x) * (blockDim.x / kWarp); }
  template <typename A, typename Op> __device__ A all_reduce(A v, Op op) const {
    if constexpr (kBlock) return block_all_reduce(v, op, sh);
    else return warp_all_reduce(v, op);
  }
};

// Softmax of row x[0, c) into p, as the CPU's softmax_row (max and exp in T, the sum in double);
// returns max + log(sum exp) to every thread of the group.
template <typename T, bool kBlock>
__device__ double softmax_row(const RowGroup<kBlock>& g, const T* x, T* p, int64_t c) {
  T mx = T(-INFINITY);
  for (int64_t i = g.lane(); i < c; i += g.size()) mx = fmax(mx, x[i]);
  mx = g.all_reduce(mx, MaxOp{});
  double s = 0;
  for (int64_t i = g.lane(); i < c; i += g.size()) {
    const T e = exp(x[i] - mx);
    p[i] = e;
    s += e;
  }
  s = g.all_reduce(s, SumOp{});
  const T inv = static_cast<T>(1.0 / s);
  for (int64_t i = g.lane(); i < c; i += g.size()) p[i] *= inv;  // each thread rescales what it wrote
  return static_cast<double>(mx) + log(s);
}

// Dense targets t (softmax_cross_entropy) or int32 labels lab (sparse): loss l[r], probs p.
template <typename T, bool kBlock>
__global__ void softmax_xent_kernel(const T* x, const T* t, const int32_t* lab, T* p, T* l, int64_t rows, int64_t c) {
  __shared__ double sh[kThreads / kWarp];
  const RowGroup<kBlock> g{sh};
  // Every thread of a group walks the same rows, so the group's reductions stay converged.
  for (int64_t r = g.first_row(); r < rows; r += g.row_stride()) {
    const T* xr = x + r * c;
    const double lse = softmax_row(g, xr, p + r * c, c);
    double loss;
    if (t) {
      const T* tr = t + r * c;
      double acc = 0;
      // Zero targets are skipped so that a -inf logit with no target mass gives 0, not NaN.
      for (int64_t i = g.lane(); i < c; i += g.size())
        if (tr[i] != T(0)) acc += static_cast<double>(tr[i]) * (lse - static_cast<double>(xr[i]));
      loss = g.all_reduce(acc, SumOp{});
    } else {
      loss = lse - static_cast<double>(xr[lab[r]]);
    }
    if (g.lane() == 0) l[r] = static_cast<T>(loss);
  }
}

// Launches softmax_xent_kernel with a warp or a block per row.
template <typename T>
void launch_softmax_xent(const T* x, const T* t, const int32_t* lab, T* p, T* l, int64_t rows, int64_t c,
                         cudaStream_t s) {
  const int64_t cap = 65535LL * 16;
  if (c <= kWarpRowMax) {
    const int64_t rows_per_block = kThreads / kWarp;
    const auto blocks = static_cast<unsigned>(std::min((rows + rows_per_block - 1) / rows_per_block, cap));
    softmax_xent_kernel<T, false><<<blocks, kThreads, 0, s>>>(x, t, lab, p, l, rows, c);
  } else {
    softmax_xent_kernel<T, true><<<static_cast<unsigned>(std::min(rows, cap)), kThreads, 0, s>>>(x, t, lab, p, l,
                                                                                                 rows, c);
  }
  RK_CUDA_CHECK_LAUNCH();
}

template <typename T>
__global__ void sparse_xent_backward_kernel(const T* p, const int32_t* lab, const T* g, T* gx, int64_t rows,
                                            int64_t c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * c; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t r = i / c;
    gx[i] = g[r] * p[i];
    if (i % c == lab[r]) gx[i] -= g[r];
  }
}

template <typename T>
__global__ void sigmoid_bce_kernel(const T* x, const T* t, T* o, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    o[i] = fmax(x[i], T(0)) - x[i] * t[i] + log1p(exp(-fabs(x[i])));
}

struct AxisView {
  int64_t outer = 1, n = 1, inner = 1;
};
AxisView axis_view(const Shape& s, int axis) {
  AxisView v;
  for (int i = 0; i < s.rank(); ++i) {
    if (i < axis) v.outer *= s[i];
    else if (i == axis) v.n = s[i];
    else v.inner *= s[i];
  }
  return v;
}

void check_float(const Tensor& t, const char* op) {
  if (!is_floating(t.dtype())) throw_dtype_error(op, t.dtype(), "float32 or float64");
}

// Labels are checked before any kernel writes, as the CPU does.
void check_labels(const Tensor& labels, int64_t c, DeviceContext& ctx) {
  if (labels.dtype() != DType::Int32) throw_dtype_error("sparse_softmax_cross_entropy labels", labels.dtype(), "int32");
  check_indices(labels, c, "sparse_softmax_cross_entropy labels", ctx);
}

// Calls f(handle, scale, desc, byte offset) once per chunk of `outer` rows of the NCHW view
// [outer, n, inner, 1] of a tensor of shape s along `axis`, each chunk small enough for cuDNN.
template <typename F>
void run_cudnn_softmax(DeviceContext& ctx, const Shape& s, int axis, DType t, const char* op, F&& f) {
  const cudnnDataType_t dt = cudnn_float_type(t, op);
  const AxisView v = axis_view(s, axis);
  const int64_t slab = v.n * v.inner;
  if (slab > kCudnnMaxElems)
    throw UnsupportedError(std::string(op) + " over a slab of " + std::to_string(slab) +
                           " elements (axis and the axes after it) on the CUDA backend: cuDNN takes at most 2^31-1");
  const int64_t chunk = kCudnnMaxElems / slab;
  cudnnHandle_t h = ctx.cudnn();
  const CudnnScale sc;
  TensorDesc d;
  for (int64_t o = 0; o < v.outer; o += chunk) {
    const int64_t rows = std::min(chunk, v.outer - o);
    RK_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.d, CUDNN_TENSOR_NCHW, dt, static_cast<int>(rows),
                                              static_cast<int>(v.n), static_cast<int>(v.inner), 1));
    f(h, sc, d.d, static_cast<size_t>(o * slab) * dtype_size(t));
  }
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes, Tensor& out) {
  const int64_t nout = out.numel();
  if (nout == 0) return;
  if (op == ReduceOp::LogSumExp && !is_floating(x.dtype())) throw_dtype_error("logsumexp", x.dtype(), "float32 or float64");
  if (x.numel() == 0) {  // the identity, converted as the CPU's static_cast; Mean's 0/0 is NaN
    double v = op == ReduceOp::Prod ? 1.0 : op == ReduceOp::Mean ? NAN : op == ReduceOp::Sum ? 0.0
             : op == ReduceOp::Min ? INFINITY : -INFINITY;
    if (x.dtype() == DType::Int32 && (op == ReduceOp::Max || op == ReduceOp::Min))
      v = op == ReduceOp::Max ? 0.0 : -1.0;  // the low 32 bits of the int64 identities INT64_MIN / INT64_MAX
    return fill(out, v);
  }
  ReducePlan p;
  const std::vector<int64_t> st = x.shape().strides();
  for (int i = 0; i < x.rank(); ++i) {
    const int64_t d = x.size(i);
    if (d == 1) continue;
    const bool red = std::binary_search(axes.begin(), axes.end(), i);
    int& nd = red ? p.nr : p.nk;
    int64_t* dims = red ? p.rdims : p.kdims;
    int64_t* sts = red ? p.rst : p.kst;
    if (nd > 0 && sts[nd - 1] == st[static_cast<size_t>(i)] * d) {  // merge contiguous neighbours
      dims[nd - 1] *= d;
      sts[nd - 1] = st[static_cast<size_t>(i)];
    } else {
      if (nd == kMaxDims) throw UnsupportedError("reduce over more than 8 separate axes is not implemented on the CUDA backend yet");
      dims[nd] = d;
      sts[nd] = st[static_cast<size_t>(i)];
      ++nd;
    }
    if (red) p.nred *= d;
  }
  DeviceContext& c = ctx();
  cudaStream_t s = c.stream();
  // Enough blocks to keep every SM busy: outputs that alone give too few blocks split their
  // reduced range over gridDim.y, and a second kernel combines the partial accumulators.
  const int64_t target_blocks = 8 * static_cast<int64_t>(c.multiprocessors());
  const bool cols = p.nk > 0 && p.kst[p.nk - 1] == 1;  // innermost axis kept: reduce down columns
  RK_DISPATCH_ALL(x.dtype(), "reduce", [&] {
    using T = scalar_t;
    using A = acc_t<T>;
    auto run = [&](auto launch_main, int64_t blocks, int64_t min_chunk) {
      int64_t splits = 1;
      if (op != ReduceOp::LogSumExp && blocks < target_blocks) {
        splits = std::min<int64_t>((target_blocks + blocks - 1) / blocks, (p.nred + min_chunk - 1) / min_chunk);
        splits = std::max<int64_t>(1, std::min<int64_t>(splits, 65535));
      }
      const int64_t chunk = (p.nred + splits - 1) / splits;
      splits = (p.nred + chunk - 1) / chunk;
      if (splits == 1) return launch_main(static_cast<A*>(nullptr), chunk, int64_t(1));
      // Float64 storage holds the 8-byte accumulators (double or int64) of every split.
      Tensor part = Tensor::empty(Shape({splits * nout}), DType::Float64, device());
      A* pp = static_cast<A*>(part.raw_data());
      launch_main(pp, chunk, splits);
      reduce_finish_kernel<T><<<grid_for(nout), kThreads, 0, s>>>(op, pp, dptr<T>(out), nout, splits, p.nred);
      RK_CUDA_CHECK_LAUNCH();
    };
    if (cols) {
      const int64_t kc = p.kdims[p.nk - 1], tiles = (kc + 31) / 32, blocks = (nout / kc) * tiles;
      if (blocks > 2147483647) throw UnsupportedError("reduce with more than 2^31-1 column blocks on the CUDA backend");
      run([&](A* pp, int64_t chunk, int64_t splits) {
            reduce_cols_kernel<T><<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(splits)), dim3(32, kColRows), 0, s>>>(
                op, dptr<T>(x), dptr<T>(out), pp, p, kc, tiles, chunk, nout);
            RK_CUDA_CHECK_LAUNCH();
          },
          blocks, 16 * kColRows);
    } else {
      if (nout > 2147483647) throw UnsupportedError("reduce with more than 2^31-1 outputs on the CUDA backend");
      const unsigned threads = p.nred >= 256 ? 256 : p.nred >= 64 ? 64 : 32;
      run([&](A* pp, int64_t chunk, int64_t splits) {
            reduce_rows_kernel<T><<<dim3(static_cast<unsigned>(nout), static_cast<unsigned>(splits)), threads,
                                    threads * sizeof(A), s>>>(op, dptr<T>(x), dptr<T>(out), pp, p, chunk);
            RK_CUDA_CHECK_LAUNCH();
          },
          nout, 8 * int64_t(threads));
    }
  });
}

void CudaBackend::arg_reduce(ArgReduceOp op, const Tensor& x, int axis, Tensor& out) {
  const AxisView v = axis_view(x.shape(), axis);
  if (out.numel() == 0) return;
  if (v.n == 0)
    throw ValueError(std::string(op == ArgReduceOp::ArgMax ? "argmax" : "argmin") +
                     ": cannot reduce an empty axis of a tensor of shape " + x.shape().str());
  cudaStream_t s = ctx().stream();
  RK_DISPATCH_ALL(x.dtype(), "arg_reduce", [&] {
    using T = scalar_t;
    arg_reduce_kernel<T><<<grid_for(v.outer * v.inner), kThreads, 0, s>>>(op == ArgReduceOp::ArgMax, dptr<T>(x),
                                                                           dptr<int32_t>(out), v.outer, v.n, v.inner);
    RK_CUDA_CHECK_LAUNCH();
  });
}

// Softmax through cuDNN: x viewed as an NCHW tensor [outer, n, inner, 1] with the softmax over C
// (CUDNN_SOFTMAX_MODE_CHANNEL), ACCURATE (max subtracted) or LOG, float32 and float64. cuDNN's
// dims are int, so `outer` is split into calls of at most kCudnnMaxElems elements each.
void CudaBackend::softmax(const Tensor& x, Tensor& y, int axis, bool log) {
  if (x.numel() == 0) return;
  run_cudnn_softmax(ctx(), x.shape(), axis, x.dtype(), log ? "log_softmax" : "softmax",
                    [&](cudnnHandle_t h, const CudnnScale& sc, cudnnTensorDescriptor_t d, size_t off) {
                      RK_CUDNN_CHECK(cudnnSoftmaxForward(h, log ? CUDNN_SOFTMAX_LOG : CUDNN_SOFTMAX_ACCURATE,
                                                         CUDNN_SOFTMAX_MODE_CHANNEL, sc.one(x.dtype()), d,
                                                         byte_ptr(x) + off, sc.zero(x.dtype()), d, byte_ptr(y) + off));
                    });
}

// cuDNN's backward is the CPU's formula: softmax gx = y * (gy - sum(gy * y)); log_softmax (y the
// log-probabilities) gx = gy - exp(y) * sum(gy).
void CudaBackend::softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, int axis, bool log) {
  if (y.numel() == 0) return;
  run_cudnn_softmax(ctx(), y.shape(), axis, y.dtype(), "softmax_backward",
                    [&](cudnnHandle_t h, const CudnnScale& sc, cudnnTensorDescriptor_t d, size_t off) {
                      RK_CUDNN_CHECK(cudnnSoftmaxBackward(h, log ? CUDNN_SOFTMAX_LOG : CUDNN_SOFTMAX_ACCURATE,
                                                          CUDNN_SOFTMAX_MODE_CHANNEL, sc.one(y.dtype()), d,
                                                          byte_ptr(y) + off, d, byte_ptr(gy) + off,
                                                          sc.zero(y.dtype()), d, byte_ptr(gx) + off));
                    });
}

void CudaBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& loss, Tensor& probs) {
  check_float(logits, "softmax_cross_entropy");
  const int64_t c = logits.rank() ? logits.size(-1) : 1;
  const int64_t rows = c ? logits.numel() / c : loss.numel();
  if (rows == 0) return;
  if (c == 0) return fill(loss, 0.0);  // an empty sum, as the CPU
  cudaStream_t s = ctx().stream();
  RK_DISPATCH_FLOAT(logits.dtype(), "softmax_cross_entropy", [&] {
    using T = scalar_t;
    launch_softmax_xent<T>(dptr<T>(logits), dptr<T>(target), nullptr, dptr<T>(probs), dptr<T>(loss), rows, c, s);
  });
}

void CudaBackend::sparse_softmax_cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& loss,
                                               Tensor& probs) {
  check_float(logits, "sparse_softmax_cross_entropy");
  const int64_t c = logits.size(-1);
  DeviceContext& cx = ctx();
  check_labels(labels, c, cx);
  const int64_t rows = labels.numel();
  if (rows == 0) return;
  RK_DISPATCH_FLOAT(logits.dtype(), "sparse_softmax_cross_entropy", [&] {
    using T = scalar_t;
    launch_softmax_xent<T>(dptr<T>(logits), nullptr, dptr<int32_t>(labels), dptr<T>(probs), dptr<T>(loss), rows, c,
                           cx.stream());
  });
}

void CudaBackend::sparse_softmax_cross_entropy_backward(const Tensor& probs, const Tensor& labels,
                                                        const Tensor& gloss, Tensor& glogits) {
  check_float(probs, "sparse_softmax_cross_entropy_backward");
  const int64_t c = probs.size(-1);
  DeviceContext& cx = ctx();
  // No range check here (the CPU has one): it costs a host synchronisation per training step,
  // the forward already raised for these labels, and the kernel only compares a label with the
  // column index, so an out-of-range label reads nothing out of bounds.
  if (labels.dtype() != DType::Int32) throw_dtype_error("sparse_softmax_cross_entropy labels", labels.dtype(), "int32");
  const int64_t rows = labels.numel();
  if (rows * c == 0) return;
  RK_DISPATCH_FLOAT(probs.dtype(), "sparse_softmax_cross_entropy_backward", [&] {
    using T = scalar_t;
    sparse_xent_backward_kernel<T><<<grid_for(rows * c), kThreads, 0, cx.stream()>>>(
        dptr<T>(probs), dptr<int32_t>(labels), dptr<T>(gloss), dptr<T>(glogits), rows, c);
    RK_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::sigmoid_binary_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& out) {
  check_float(logits, "sigmoid_binary_cross_entropy");
  const int64_t n = logits.numel();
  if (n == 0) return;
  cudaStream_t s = ctx().stream();
  RK_DISPATCH_FLOAT(logits.dtype(), "sigmoid_binary_cross_entropy", [&] {
    using T = scalar_t;
    sigmoid_bce_kernel<T><<<grid_for(n), kThreads, 0, s>>>(dptr<T>(logits), dptr<T>(target), dptr<T>(out), n);
    RK_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace rk::cuda
