// CUDA data movement: permute, box copies, gather / scatter_add / one_hot. Index tensors are
// range-checked on the device before anything is written (IndexError, as on the CPU).
#include <string>

#include "backend/cuda/cuda_backend.cuh"
#include "backend/cuda/kernels.cuh"

namespace rk::cuda {

namespace {

__global__ void first_bad_index_kernel(const int32_t* idx, int64_t m, int64_t n, unsigned long long* bad) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < m; j += int64_t(blockDim.x) * gridDim.x)
    if (idx[j] < 0 || idx[j] >= n) atomicMin(bad, static_cast<unsigned long long>(j));
}

// Element-size-generic copies move bytes as unsigned integers of the same width.
template <int ES> struct Bits;
template <> struct Bits<1> { using type = uint8_t; };
template <> struct Bits<4> { using type = uint32_t; };
template <> struct Bits<8> { using type = uint64_t; };

template <typename F>
void by_element_size(size_t es, F f) {
  switch (es) {
    case 1: return f(uint8_t{});
    case 4: return f(uint32_t{});
    case 8: return f(uint64_t{});
    default: throw UnsupportedError("element size " + std::to_string(es) + " on the CUDA backend");
  }
}

/// out[i] = x[offset of output element i in x]: dims are out's extents, st the x strides per out axis.
struct Gather {
  int nd = 0;
  int64_t dims[kMaxDims];
  int64_t st[kMaxDims];
};

template <typename E>
__global__ void permute_kernel(const E* x, E* out, Gather g, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t r = i, off = 0;
    for (int d = g.nd - 1; d > 0; --d) {
      off += (r % g.dims[d]) * g.st[d];
      r /= g.dims[d];
    }
    out[i] = x[off + r * g.st[0]];  // the outermost axis needs no division
  }
}

struct Box {
  int nd = 0;
  int64_t ext[kMaxDims], ss[kMaxDims], ds[kMaxDims];
};

template <typename E, bool ACC>
__global__ void box_kernel(const E* src, E* dst, Box b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t r = i, so = 0, dof = 0;
    for (int d = b.nd - 1; d > 0; --d) {
      const int64_t c = r % b.ext[d];
      r /= b.ext[d];
      so += c * b.ss[d];
      dof += c * b.ds[d];
    }
    so += r * b.ss[0];  // the outermost axis needs no division
    dof += r * b.ds[0];
    if constexpr (ACC) dst[dof] += src[so];
    else dst[dof] = src[so];
  }
}

template <typename E>
__global__ void gather_kernel(const E* x, const int32_t* idx, E* out, int64_t outer, int64_t n, int64_t m,
                              int64_t inner) {
  const int64_t total = outer * m * inner;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t k = i % inner, t = i / inner, j = t % m, o = t / m;
    out[i] = x[(o * n + idx[j]) * inner + k];
  }
}

template <typename T>
__global__ void scatter_add_kernel(const T* g, const int32_t* idx, T* gx, int64_t outer, int64_t n, int64_t m,
                                   int64_t inner) {
  const int64_t total = outer * m * inner;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t k = i % inner, t = i / inner, j = t % m, o = t / m;
    atomicAdd(gx + (o * n + idx[j]) * inner + k, g[i]);  // repeated indices add up
  }
}

template <typename T>
__global__ void one_hot_kernel(const int32_t* idx, T* out, int64_t rows, int64_t depth) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * depth;
       i += int64_t(blockDim.x) * gridDim.x)
    out[i] = idx[i / depth] == i % depth ? T(1) : T(0);
}

int64_t product(const std::vector<int64_t>& d, size_t b, size_t e) {
  int64_t p = 1;
  for (size_t i = b; i < e; ++i) p *= d[i];
  return p;
}

}  // namespace

void check_indices(const Tensor& idx, int64_t n, const char* op, DeviceContext& ctx) {
  if (idx.dtype() != DType::Int32) throw_dtype_error(op, idx.dtype(), "int32 indices");
  const int64_t m = idx.numel();
  if (m == 0) return;
  Tensor bad = Tensor::empty(Shape({1}), DType::Float64, idx.device());  // 8 bytes for the position
  unsigned long long pos = static_cast<unsigned long long>(m);
  ctx.upload(bad.raw_data(), &pos, sizeof pos);
  first_bad_index_kernel<<<grid_for(m), kThreads, 0, ctx.stream()>>>(dptr<int32_t>(idx), m, n,
                                                                     static_cast<unsigned long long*>(bad.raw_data()));
  RK_CUDA_CHECK_LAUNCH();
  RK_CUDA_CHECK(cudaMemcpyAsync(&pos, bad.raw_data(), sizeof pos, cudaMemcpyDeviceToHost, ctx.stream()));
  ctx.synchronize();
  if (pos < static_cast<unsigned long long>(m)) {
    int32_t v = 0;  // on the device's stream: the legacy default stream does not order with it
    RK_CUDA_CHECK(cudaMemcpyAsync(&v, dptr<int32_t>(idx) + pos, sizeof v, cudaMemcpyDeviceToHost, ctx.stream()));
    ctx.synchronize();
    throw IndexError(std::string(op) + ": index " + std::to_string(v) + " is out of bounds for an axis of size " +
                     std::to_string(n));
  }
}

void CudaBackend::permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  const std::vector<int64_t> st = x.shape().strides();
  Gather g;
  for (size_t i = 0; i < perm.size(); ++i) {
    const int64_t d = x.size(perm[i]);
    if (d == 1) continue;
    const int64_t s = st[static_cast<size_t>(perm[i])];
    if (g.nd > 0 && g.st[g.nd - 1] == s * d) {  // neighbours that stay adjacent in x merge
      g.dims[g.nd - 1] *= d;
      g.st[g.nd - 1] = s;
      continue;
    }
    if (g.nd == kMaxDims) throw UnsupportedError("permute of more than 8 separate axes is not implemented on the CUDA backend yet");
    g.dims[g.nd] = d;
    g.st[g.nd] = s;
    ++g.nd;
  }
  if (g.nd == 0) { g.nd = 1; g.dims[0] = 1; g.st[0] = 0; }
  cudaStream_t s = ctx().stream();
  by_element_size(dtype_size(x.dtype()), [&](auto tag) {
    using E = decltype(tag);
    permute_kernel<E><<<grid_for(n), kThreads, 0, s>>>(static_cast<const E*>(x.raw_data()),
                                                       static_cast<E*>(out.raw_data()), g, n);
    RK_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::copy_region(const Tensor& src, const std::vector<int64_t>& src_start, Tensor& dst,
                              const std::vector<int64_t>& dst_start, const std::vector<int64_t>& extent,
                              bool accumulate) {
  int64_t n = 1;
  for (int64_t e : extent) n *= e;
  if (n == 0) return;
  if (extent.size() > static_cast<size_t>(kMaxDims))
    throw UnsupportedError("copy_region of rank > 8 is not implemented on the CUDA backend yet");
  const std::vector<int64_t> ss = src.shape().strides(), ds = dst.shape().strides();
  Box b;
  int64_t sb = 0, db = 0;
  for (size_t i = 0; i < extent.size(); ++i) {
    sb += src_start[i] * ss[i];
    db += dst_start[i] * ds[i];
    if (extent[i] == 1) continue;
    // An axis that continues the previous one contiguously in both tensors merges with it (a
    // slice along the first axis becomes one flat run): fewer 64-bit divisions per element.
    if (b.nd > 0 && b.ss[b.nd - 1] == ss[i] * extent[i] && b.ds[b.nd - 1] == ds[i] * extent[i]) {
      b.ext[b.nd - 1] *= extent[i];
      b.ss[b.nd - 1] = ss[i];
      b.ds[b.nd - 1] = ds[i];
      continue;
    }
    b.ext[b.nd] = extent[i];
    b.ss[b.nd] = ss[i];
    b.ds[b.nd] = ds[i];
    ++b.nd;
  }
  if (b.nd == 0) { b.nd = 1; b.ext[0] = 1; b.ss[0] = b.ds[0] = 0; }
  cudaStream_t s = ctx().stream();
  if (accumulate) {
    RK_DISPATCH_FLOAT(src.dtype(), "copy_region (accumulate)", [&] {
      using T = scalar_t;
      box_kernel<T, true><<<grid_for(n), kThreads, 0, s>>>(dptr<T>(src) + sb, dptr<T>(dst) + db, b, n);
      RK_CUDA_CHECK_LAUNCH();
    });
    return;
  }
  by_element_size(dtype_size(src.dtype()), [&](auto tag) {
    using E = decltype(tag);
    box_kernel<E, false><<<grid_for(n), kThreads, 0, s>>>(static_cast<const E*>(src.raw_data()) + sb,
                                                          static_cast<E*>(dst.raw_data()) + db, b, n);
    RK_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::gather(const Tensor& x, const Tensor& idx, int axis, Tensor& out) {
  const std::vector<int64_t>& xd = x.shape().dims();
  const size_t ax = static_cast<size_t>(axis);
  const int64_t n = xd[ax];
  DeviceContext& c = ctx();
  check_indices(idx, n, "gather", c);
  const int64_t outer = product(xd, 0, ax), inner = product(xd, ax + 1, xd.size()), m = idx.numel();
  const int64_t total = outer * m * inner;
  if (total == 0) return;
  by_element_size(dtype_size(x.dtype()), [&](auto tag) {
    using E = decltype(tag);
    gather_kernel<E><<<grid_for(total), kThreads, 0, c.stream()>>>(static_cast<const E*>(x.raw_data()),
                                                                   dptr<int32_t>(idx), static_cast<E*>(out.raw_data()),
                                                                   outer, n, m, inner);
    RK_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::scatter_add(const Tensor& g, const Tensor& idx, int axis, Tensor& gx) {
  const std::vector<int64_t>& xd = gx.shape().dims();
  const size_t ax = static_cast<size_t>(axis);
  const int64_t n = xd[ax];
  DeviceContext& c = ctx();
  check_indices(idx, n, "scatter_add", c);
  const int64_t outer = product(xd, 0, ax), inner = product(xd, ax + 1, xd.size()), m = idx.numel();
  const int64_t total = outer * m * inner;
  if (total == 0) return;
  RK_DISPATCH_FLOAT(gx.dtype(), "scatter_add", [&] {
    using T = scalar_t;
    scatter_add_kernel<T><<<grid_for(total), kThreads, 0, c.stream()>>>(dptr<T>(g), dptr<int32_t>(idx), dptr<T>(gx),
                                                                         outer, n, m, inner);
    RK_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::one_hot(const Tensor& idx, Tensor& out) {
  if (idx.dtype() != DType::Int32) throw_dtype_error("one_hot", idx.dtype(), "int32 indices");
  const int64_t depth = out.shape()[-1], rows = idx.numel();
  if (rows * depth == 0) return;
  cudaStream_t s = ctx().stream();
  RK_DISPATCH_ALL(out.dtype(), "one_hot", [&] {
    using T = scalar_t;
    one_hot_kernel<T><<<grid_for(rows * depth), kThreads, 0, s>>>(dptr<int32_t>(idx), dptr<T>(out), rows, depth);
    RK_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace rk::cuda
