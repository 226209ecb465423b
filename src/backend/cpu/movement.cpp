// Data-movement kernels of the CPU backend: permute, box copies, gather/scatter, one-hot.
// Movement does not care what the bytes mean, so permute and copy_region work on the
// element size (1, 4 or 8 bytes) and serve every dtype, bool included.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/parallel_for.h"

namespace rk::cpu {

namespace {

// Below this many elements a loop runs on one thread: forking the pool costs more.
constexpr int64_t kParallelMin = 1 << 15;
// Tile edge of the blocked transpose: a 32x32 tile of doubles (8 KiB) read and written
// stays in L1, so the strided side of the copy hits cache lines it just loaded.
constexpr int64_t kTile = 32;

int64_t product(const std::vector<int64_t>& v, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= v[i];
  return p;
}

// A permutation reduced to its essentials: size-1 axes dropped, and input axes that stay
// adjacent and in order in the output merged, so e.g. (N, H, W, C) -> (N, C, H, W) becomes a
// batched 2-D transpose (N, H*W, C) -> (N, C, H*W).
struct SimplePerm {
  std::vector<int64_t> in_dims;  // input extents after simplification
  std::vector<int> perm;         // out axis i reads input axis perm[i]
};

SimplePerm simplify_perm(const std::vector<int64_t>& dims, const std::vector<int>& perm) {
  // Drop size-1 axes, renumbering the survivors.
  std::vector<int> keep_index(dims.size(), -1);
  std::vector<int64_t> d1;
  for (size_t i = 0; i < dims.size(); ++i)
    if (dims[i] != 1) {
      keep_index[i] = static_cast<int>(d1.size());
      d1.push_back(dims[i]);
    }
  std::vector<int> p1;
  for (int a : perm)
    if (keep_index[static_cast<size_t>(a)] >= 0) p1.push_back(keep_index[static_cast<size_t>(a)]);

  // Merge runs of output axes that read consecutive input axes.
  std::vector<std::vector<int>> groups;  // each: consecutive input axes, in output order
  for (int a : p1) {
    if (!groups.empty() && groups.back().back() + 1 == a) groups.back().push_back(a);
    else groups.push_back({a});
  }
  // Order groups by their first input axis to number the merged input axes.
  std::vector<size_t> order(groups.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return groups[x][0] < groups[y][0]; });
  SimplePerm s;
  s.in_dims.resize(groups.size());
  std::vector<int> new_index(groups.size());
  for (size_t k = 0; k < order.size(); ++k) {
    const auto& g = groups[order[k]];
    int64_t ext = 1;
    for (int a : g) ext *= d1[static_cast<size_t>(a)];
    s.in_dims[k] = ext;
    new_index[order[k]] = static_cast<int>(k);
  }
  s.perm.resize(groups.size());
  for (size_t i = 0; i < groups.size(); ++i) s.perm[i] = new_index[i];
  return s;
}

// Mixed-radix decomposition of `flat` over `dims` (row-major), accumulated with two stride sets.
inline void offsets_of(int64_t flat, const std::vector<int64_t>& dims, const std::vector<int64_t>& sa,
                       const std::vector<int64_t>& sb, int64_t& oa, int64_t& ob) {
  oa = 0;
  ob = 0;
  for (size_t i = dims.size(); i-- > 0;) {
    int64_t q = flat / dims[i], r = flat - q * dims[i];
    oa += r * sa[i];
    ob += r * sb[i];
    flat = q;
  }
}

template <typename E>
void permute_kernel(const E* in, E* out, const SimplePerm& sp) {
  const int r = static_cast<int>(sp.perm.size());
  std::vector<int64_t> in_strides(static_cast<size_t>(r));
  {
    int64_t acc = 1;
    for (int i = r - 1; i >= 0; --i) {
      in_strides[static_cast<size_t>(i)] = acc;
      acc *= sp.in_dims[static_cast<size_t>(i)];
    }
  }
  std::vector<int64_t> out_dims(static_cast<size_t>(r)), out_in_stride(static_cast<size_t>(r)),
      out_strides(static_cast<size_t>(r));
  for (int i = 0; i < r; ++i) {
    out_dims[static_cast<size_t>(i)] = sp.in_dims[static_cast<size_t>(sp.perm[static_cast<size_t>(i)])];
    out_in_stride[static_cast<size_t>(i)] = in_strides[static_cast<size_t>(sp.perm[static_cast<size_t>(i)])];
  }
  {
    int64_t acc = 1;
    for (int i = r - 1; i >= 0; --i) {
      out_strides[static_cast<size_t>(i)] = acc;
      acc *= out_dims[static_cast<size_t>(i)];
    }
  }
  const int64_t numel = product(out_dims, 0, out_dims.size());

  // If the last output axis reads the last input axis, both sides are contiguous along it
  // and each output row is one memcpy.
  if (sp.perm[static_cast<size_t>(r - 1)] == r - 1) {
    const int64_t len = out_dims[static_cast<size_t>(r - 1)];
    std::vector<int64_t> od(out_dims.begin(), out_dims.end() - 1), oi(out_in_stride.begin(), out_in_stride.end() - 1),
        oo(out_strides.begin(), out_strides.end() - 1);
    const int64_t rows = numel / len;
    parallel_for(rows, numel > kParallelMin, [&](int64_t t) {
      int64_t bi, bo;
      offsets_of(t, od, oi, oo, bi, bo);
      std::memcpy(out + bo, in + bi, static_cast<size_t>(len) * sizeof(E));
    });
    return;
  }
  // Otherwise a batched 2-D transpose between out axis a (the last) and out axis b (the one
  // reading the contiguous input axis), done in tiles so the strided side stays in cache.
  const int a = r - 1;
  int b = 0;
  for (int i = 0; i < r; ++i)
    if (sp.perm[static_cast<size_t>(i)] == r - 1) b = i;
  const int64_t na = out_dims[static_cast<size_t>(a)], nb = out_dims[static_cast<size_t>(b)];
  const int64_t in_sa = out_in_stride[static_cast<size_t>(a)];  // input stride along out axis a
  const int64_t out_sb = out_strides[static_cast<size_t>(b)];   // output stride along out axis b

  std::vector<int64_t> rest_dims, rest_in, rest_out;  // the other axes, in output order
  for (int i = 0; i < r; ++i)
    if (i != a && i != b) {
      rest_dims.push_back(out_dims[static_cast<size_t>(i)]);
      rest_in.push_back(out_in_stride[static_cast<size_t>(i)]);
      rest_out.push_back(out_strides[static_cast<size_t>(i)]);
    }
  const int64_t n_rest = product(rest_dims, 0, rest_dims.size());
  const int64_t tiles_a = (na + kTile - 1) / kTile, tiles_b = (nb + kTile - 1) / kTile;
  const int64_t n_tasks = n_rest * tiles_b * tiles_a;

  parallel_for(n_tasks, numel > kParallelMin, [&](int64_t task) {
    const int64_t ta = task % tiles_a;
    const int64_t tb = (task / tiles_a) % tiles_b;
    const int64_t rest = task / (tiles_a * tiles_b);
    int64_t base_in, base_out;
    offsets_of(rest, rest_dims, rest_in, rest_out, base_in, base_out);
    const int64_t a0 = ta * kTile, a1 = std::min(na, a0 + kTile);
    const int64_t b0 = tb * kTile, b1 = std::min(nb, b0 + kTile);
    for (int64_t x = b0; x < b1; ++x) {
      const E* src = in + base_in + x;  // contiguous input axis
      E* dst = out + base_out + x * out_sb;
      for (int64_t y = a0; y < a1; ++y) dst[y] = src[y * in_sa];
    }
  });
}

template <typename T>
void accumulate_runs(const T* src, T* dst, int64_t run, const std::vector<int64_t>& outer_dims,
                     const std::vector<int64_t>& outer_ss, const std::vector<int64_t>& outer_ds, bool parallel) {
  const int64_t n_outer = product(outer_dims, 0, outer_dims.size());
  parallel_for(n_outer, parallel, [&](int64_t o) {
    int64_t so, dof;
    offsets_of(o, outer_dims, outer_ss, outer_ds, so, dof);
    const T* s = src + so;
    T* d = dst + dof;
    for (int64_t i = 0; i < run; ++i) d[i] += s[i];
  });
}

// Duplicate indices write the same gx row, so threads split outer slices and column chunks
// (disjoint in gx) and each walks every index in order: race-free, and the summation order
// per element is fixed, so results do not depend on the thread count.
template <typename T>
void scatter_add_kernel(const T* g, const std::vector<int64_t>& ids, T* gx, int64_t outer, int64_t n, int64_t inner,
                        bool parallel) {
  constexpr int64_t kChunk = 1024;
  const int64_t m = static_cast<int64_t>(ids.size());
  const int64_t chunks = (inner + kChunk - 1) / kChunk;
  const int64_t tasks = outer * chunks;
  parallel_for(tasks, parallel && tasks > 1, [&](int64_t t) {
    const int64_t o = t / chunks, c = t - o * chunks;
    const int64_t i0 = c * kChunk, i1 = std::min(inner, i0 + kChunk);
    for (int64_t j = 0; j < m; ++j) {
      const T* s = g + (o * m + j) * inner;
      T* d = gx + (o * n + ids[static_cast<size_t>(j)]) * inner;
      for (int64_t i = i0; i < i1; ++i) d[i] += s[i];
    }
  });
}

template <typename T>
void one_hot_kernel(const int32_t* idx, int64_t n, T* out, int64_t depth) {
  parallel_for(n, n * depth > kParallelMin, [&](int64_t i) {
    T* row = out + i * depth;
    std::fill(row, row + depth, T(0));
    const int64_t c = idx[i];
    if (c >= 0 && c < depth) row[c] = T(1);
  });
}

template <typename F>
void by_element_size(size_t esize, F&& f) {
  switch (esize) {
    case 1: f(uint8_t{}); break;
    case 2: f(uint16_t{}); break;
    case 4: f(uint32_t{}); break;
    case 8: f(uint64_t{}); break;
    default: throw UnsupportedError("data movement: element size " + std::to_string(esize) + " is not supported");
  }
}

// Loads every index of `idx` after checking it lies in [0, n): a bad index must throw before
// any output is written, so the caller never sees a half-filled tensor.
std::vector<int64_t> checked_indices(const Tensor& idx, int64_t n, const char* op) {
  if (idx.dtype() != DType::Int32) throw_dtype_error(op, idx.dtype(), "int32 indices");
  const int32_t* p = idx.data<int32_t>();
  std::vector<int64_t> out(static_cast<size_t>(idx.numel()));
  for (size_t j = 0; j < out.size(); ++j) {
    const int64_t v = p[j];
    if (v < 0 || v >= n)
      throw IndexError(std::string(op) + ": index " + std::to_string(v) + " is out of bounds for an axis of size " +
                       std::to_string(n));
    out[j] = v;
  }
  return out;
}

}  // namespace

void CpuBackend::permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) {
  if (x.numel() == 0) return;
  const SimplePerm sp = simplify_perm(x.shape().dims(), perm);
  if (sp.perm.size() <= 1) {  // nothing actually moves relative to memory order
    std::memcpy(out.raw_data(), x.raw_data(), x.nbytes());
    return;
  }
  by_element_size(dtype_size(x.dtype()), [&](auto tag) {
    using E = decltype(tag);
    permute_kernel<E>(static_cast<const E*>(x.raw_data()), static_cast<E*>(out.raw_data()), sp);
  });
}

void CpuBackend::copy_region(const Tensor& src, const std::vector<int64_t>& src_start, Tensor& dst,
                             const std::vector<int64_t>& dst_start, const std::vector<int64_t>& extent,
                             bool accumulate) {
  const size_t r = extent.size();
  for (int64_t e : extent)
    if (e == 0) return;
  const std::vector<int64_t>& sd = src.shape().dims();
  const std::vector<int64_t>& dd = dst.shape().dims();
  const std::vector<int64_t> ss = src.shape().strides(), ds = dst.shape().strides();

  // The innermost axes that the box covers fully in both tensors fuse with the first partial
  // axis above them into one contiguous run per outer position.
  size_t k = r > 0 ? r - 1 : 0;  // first axis of the run
  while (k > 0 && extent[k] == sd[k] && extent[k] == dd[k]) --k;
  int64_t run = 1;
  for (size_t i = k; i < r; ++i) run *= extent[i];
  int64_t src_base = 0, dst_base = 0;
  for (size_t i = 0; i < r; ++i) {
    src_base += src_start[i] * ss[i];
    dst_base += dst_start[i] * ds[i];
  }
  std::vector<int64_t> outer_dims(extent.begin(), extent.begin() + static_cast<std::ptrdiff_t>(k));
  std::vector<int64_t> outer_ss(ss.begin(), ss.begin() + static_cast<std::ptrdiff_t>(k));
  std::vector<int64_t> outer_ds(ds.begin(), ds.begin() + static_cast<std::ptrdiff_t>(k));
  const int64_t n_outer = product(outer_dims, 0, outer_dims.size());
  const int64_t total = n_outer * run;

  if (!accumulate) {
    const size_t es = dtype_size(src.dtype());
    const char* sp = static_cast<const char*>(src.raw_data());
    char* dp = static_cast<char*>(dst.raw_data());
    parallel_for(n_outer, total > kParallelMin && n_outer > 1, [&](int64_t o) {
      int64_t so, dof;
      offsets_of(o, outer_dims, outer_ss, outer_ds, so, dof);
      std::memcpy(dp + static_cast<size_t>(dst_base + dof) * es, sp + static_cast<size_t>(src_base + so) * es,
                  static_cast<size_t>(run) * es);
    });
    return;
  }
  RK_DISPATCH_FLOAT(src.dtype(), "copy_region (accumulate)", [&] {
    accumulate_runs<scalar_t>(src.data<scalar_t>() + src_base, dst.data<scalar_t>() + dst_base, run, outer_dims,
                              outer_ss, outer_ds, total > kParallelMin && n_outer > 1);
  });
}

void CpuBackend::gather(const Tensor& x, const Tensor& idx, int axis, Tensor& out) {
  const std::vector<int64_t>& xd = x.shape().dims();
  const size_t ax = static_cast<size_t>(axis);
  const int64_t n = xd[ax];
  const std::vector<int64_t> ids = checked_indices(idx, n, "gather");
  const int64_t outer = product(xd, 0, ax), inner = product(xd, ax + 1, xd.size());
  const int64_t m = static_cast<int64_t>(ids.size());
  const size_t es = dtype_size(x.dtype());
  const size_t row = static_cast<size_t>(inner) * es;
  const char* xp = static_cast<const char*>(x.raw_data());
  char* op = static_cast<char*>(out.raw_data());
  if (row == 0 || m == 0 || outer == 0) return;
  const int64_t rows = outer * m;
  parallel_for(rows, rows * inner > kParallelMin, [&](int64_t t) {
    const int64_t o = t / m, j = t - o * m;
    std::memcpy(op + static_cast<size_t>(t) * row,
                xp + static_cast<size_t>(o * n + ids[static_cast<size_t>(j)]) * row, row);
  });
}

void CpuBackend::scatter_add(const Tensor& g, const Tensor& idx, int axis, Tensor& gx) {
  const std::vector<int64_t>& xd = gx.shape().dims();
  const size_t ax = static_cast<size_t>(axis);
  const int64_t n = xd[ax];
  const std::vector<int64_t> ids = checked_indices(idx, n, "scatter_add");
  const int64_t outer = product(xd, 0, ax), inner = product(xd, ax + 1, xd.size());
  const int64_t m = static_cast<int64_t>(ids.size());
  if (outer == 0 || inner == 0 || m == 0) return;
  RK_DISPATCH_FLOAT(gx.dtype(), "scatter_add", [&] {
    scatter_add_kernel<scalar_t>(g.data<scalar_t>(), ids, gx.data<scalar_t>(), outer, n, inner,
                                 outer * m * inner > kParallelMin);
  });
}

void CpuBackend::one_hot(const Tensor& idx, Tensor& out) {
  if (idx.dtype() != DType::Int32) throw_dtype_error("one_hot", idx.dtype(), "int32 indices");
  RK_DISPATCH_ALL(out.dtype(), "one_hot", [&] {
    one_hot_kernel<scalar_t>(idx.data<int32_t>(), idx.numel(), out.data<scalar_t>(), out.shape()[-1]);
  });
}

}  // namespace rk::cpu
