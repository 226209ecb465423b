// CPU reductions, arg-reductions, softmax and the fused cross-entropy kernels.
// Shapes are viewed as [outer, reduced, inner] blocks wherever the reduced axes are
// contiguous; float32 accumulates in double so long sums keep their digits.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/parallel_for.h"

namespace rk::cpu {

namespace {

// Below this many elements of work a fork/join costs more than it saves.
constexpr int64_t kParallelMin = 32768;
// Columns of an [outer, reduced, inner] block handled by one task: its accumulators stay in L1.
constexpr int64_t kInnerChunk = 256;
// A single long row is summed in fixed-size blocks so results do not depend on the thread count.
constexpr int64_t kRowBlock = 8192;

template <typename T>
using acc_t = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <typename A>
inline bool is_nan(A v) {
  if constexpr (std::is_floating_point_v<A>) return std::isnan(v);
  else return false;
}

template <ReduceOp OP, typename A>
inline A identity() {
  if constexpr (OP == ReduceOp::Prod) return A(1);
  else if constexpr (OP == ReduceOp::Max || OP == ReduceOp::LogSumExp)
    return std::numeric_limits<A>::has_infinity ? -std::numeric_limits<A>::infinity()
                                                : std::numeric_limits<A>::lowest();
  else if constexpr (OP == ReduceOp::Min)
    return std::numeric_limits<A>::has_infinity ? std::numeric_limits<A>::infinity()
                                                : std::numeric_limits<A>::max();
  else return A(0);
}

// LogSumExp's first pass is a Max; its second pass (the shifted sum) is done separately.
template <ReduceOp OP, typename A>
inline void step(A& acc, A v) {
  if constexpr (OP == ReduceOp::Sum || OP == ReduceOp::Mean) {
    acc += v;
  } else if constexpr (OP == ReduceOp::Prod) {
    // Integer products wrap (through unsigned arithmetic, so there is no signed overflow).
    if constexpr (std::is_integral_v<A>)
      acc = static_cast<A>(static_cast<uint64_t>(acc) * static_cast<uint64_t>(v));
    else acc *= v;
  } else if constexpr (OP == ReduceOp::Max || OP == ReduceOp::LogSumExp) {
    if (v > acc || is_nan(v)) acc = v;  // once acc is NaN nothing compares greater, so NaN sticks
  } else {
    if (v < acc || is_nan(v)) acc = v;
  }
}

template <typename T, typename A>
inline T to_out(A v) {
  if constexpr (std::is_same_v<T, uint8_t>) return static_cast<T>(v != 0);
  else return static_cast<T>(v);
}

template <ReduceOp OP, typename T, typename A>
inline T finish(A acc, int64_t count) {
  if constexpr (OP == ReduceOp::Mean)
    return to_out<T>(static_cast<double>(acc) / static_cast<double>(count));
  else return to_out<T>(acc);
}

template <typename A>
inline A lse_finish(A mx, A sum) {
  // An infinite max makes the shifted terms NaN (inf - inf); the answer is the max itself.
  if (std::isinf(mx)) return mx;
  return mx + std::log(sum);
}

// ---- [outer, red, inner] with inner == 1: each output reduces one contiguous row ----------
template <ReduceOp OP, typename T>
acc_t<T> row_reduce(const T* x, int64_t n) {
  using A = acc_t<T>;
  if constexpr (OP == ReduceOp::LogSumExp) {
    A mx = identity<ReduceOp::Max, A>();
    for (int64_t i = 0; i < n; ++i) step<ReduceOp::Max>(mx, static_cast<A>(x[i]));
    if (std::isinf(mx) || std::isnan(mx)) return mx;
    A s = 0;
    T m = static_cast<T>(mx);  // exp in the input's precision; only the sum needs double
    for (int64_t i = 0; i < n; ++i) s += std::exp(x[i] - m);
    return lse_finish(mx, s);
  } else if constexpr (OP == ReduceOp::Sum || OP == ReduceOp::Mean) {
    // Four independent accumulators break the add latency chain (and pair up rounding errors).
    A s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      s0 += static_cast<A>(x[i]);
      s1 += static_cast<A>(x[i + 1]);
      s2 += static_cast<A>(x[i + 2]);
      s3 += static_cast<A>(x[i + 3]);
    }
    for (; i < n; ++i) s0 += static_cast<A>(x[i]);
    return (s0 + s1) + (s2 + s3);
  } else {
    A acc = identity<OP, A>();
    for (int64_t i = 0; i < n; ++i) step<OP>(acc, static_cast<A>(x[i]));
    return acc;
  }
}

template <ReduceOp OP, typename T>
void reduce_rows(const T* x, T* out, int64_t outer, int64_t red) {
  using A = acc_t<T>;
  if (outer == 1 && red > 2 * kRowBlock && OP != ReduceOp::LogSumExp) {
    // One long row: fixed blocks in parallel, then a sequential combine (thread-count independent).
    int64_t nb = (red + kRowBlock - 1) / kRowBlock;
    std::vector<A> part(static_cast<size_t>(nb));
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nb; ++b) {
      int64_t lo = b * kRowBlock, hi = std::min(red, lo + kRowBlock);
      part[static_cast<size_t>(b)] = row_reduce<OP == ReduceOp::Mean ? ReduceOp::Sum : OP>(x + lo, hi - lo);
    }
    A acc = identity<OP, A>();
    for (A p : part) step<OP>(acc, p);
    out[0] = finish<OP, T>(acc, red);
    return;
  }
  parallel_for(outer, outer * red > kParallelMin && outer > 1, [&](int64_t o) {
    A acc = row_reduce<OP>(x + o * red, red);
    out[o] = finish<OP, T>(acc, red);
  });
}

// ---- [outer, red, inner] with inner > 1: vectorisable column accumulators ----------------
template <ReduceOp OP, typename T>
void reduce_cols(const T* x, T* out, int64_t outer, int64_t red, int64_t inner) {
  using A = acc_t<T>;
  int64_t nchunk = (inner + kInnerChunk - 1) / kInnerChunk;
  int64_t tasks = outer * nchunk;
  parallel_for(tasks, outer * red * inner > kParallelMin && tasks > 1, [&](int64_t t) {
    int64_t o = t / nchunk, j0 = (t % nchunk) * kInnerChunk;
    int64_t w = std::min(kInnerChunk, inner - j0);
    A acc[kInnerChunk];
    const T* base = x + o * red * inner + j0;
    constexpr ReduceOp first = OP == ReduceOp::LogSumExp ? ReduceOp::Max : OP;
    for (int64_t j = 0; j < w; ++j) acc[j] = identity<first, A>();
    for (int64_t r = 0; r < red; ++r) {
      const T* row = base + r * inner;
      for (int64_t j = 0; j < w; ++j) step<first>(acc[j], static_cast<A>(row[j]));
    }
    T* dst = out + o * inner + j0;
    if constexpr (OP == ReduceOp::LogSumExp) {
      A sum[kInnerChunk];
      for (int64_t j = 0; j < w; ++j) sum[j] = 0;
      for (int64_t r = 0; r < red; ++r) {
        const T* row = base + r * inner;
        for (int64_t j = 0; j < w; ++j) sum[j] += std::exp(row[j] - static_cast<T>(acc[j]));
      }
      for (int64_t j = 0; j < w; ++j) dst[j] = static_cast<T>(lse_finish(acc[j], sum[j]));
    } else {
      for (int64_t j = 0; j < w; ++j) dst[j] = finish<OP, T>(acc[j], red);
    }
  });
}

// ---- general (non-contiguous reduced axes): explicit offset lists --------------------------
template <ReduceOp OP, typename T>
void reduce_general(const T* x, T* out, const std::vector<int64_t>& dims, const std::vector<bool>& red_axis) {
  using A = acc_t<T>;
  int rank = static_cast<int>(dims.size());
  std::vector<int64_t> strides(dims.size());
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; --i) {
    strides[static_cast<size_t>(i)] = s;
    s *= dims[static_cast<size_t>(i)];
  }
  // Offsets of every element of one reduced block, and of the first element of each output.
  std::vector<int64_t> kdims, kstr, rdims, rstr;
  for (int i = 0; i < rank; ++i) {
    auto u = static_cast<size_t>(i);
    (red_axis[u] ? rdims : kdims).push_back(dims[u]);
    (red_axis[u] ? rstr : kstr).push_back(strides[u]);
  }
  auto offsets = [](const std::vector<int64_t>& d, const std::vector<int64_t>& st) {
    int64_t n = 1;
    for (int64_t e : d) n *= e;
    std::vector<int64_t> off(static_cast<size_t>(n));
    std::vector<int64_t> idx(d.size(), 0);
    int64_t cur = 0;
    for (int64_t i = 0; i < n; ++i) {
      off[static_cast<size_t>(i)] = cur;
      for (int k = static_cast<int>(d.size()) - 1; k >= 0; --k) {
        auto uk = static_cast<size_t>(k);
        cur += st[uk];
        if (++idx[uk] < d[uk]) break;
        cur -= st[uk] * d[uk];
        idx[uk] = 0;
      }
    }
    return off;
  };
  std::vector<int64_t> roff = offsets(rdims, rstr), koff = offsets(kdims, kstr);
  auto nred = static_cast<int64_t>(roff.size()), nout = static_cast<int64_t>(koff.size());
  parallel_for(nout, nout * nred > kParallelMin && nout > 1, [&](int64_t o) {
    const T* base = x + koff[static_cast<size_t>(o)];
    if constexpr (OP == ReduceOp::LogSumExp) {
      A mx = identity<ReduceOp::Max, A>();
      for (int64_t r = 0; r < nred; ++r) step<ReduceOp::Max>(mx, static_cast<A>(base[roff[static_cast<size_t>(r)]]));
      A sum = 0;
      if (!std::isinf(mx) && !std::isnan(mx))
        for (int64_t r = 0; r < nred; ++r) sum += std::exp(static_cast<A>(base[roff[static_cast<size_t>(r)]]) - mx);
      out[o] = static_cast<T>(lse_finish(mx, sum));
    } else {
      A acc = identity<OP, A>();
      for (int64_t r = 0; r < nred; ++r) step<OP>(acc, static_cast<A>(base[roff[static_cast<size_t>(r)]]));
      out[o] = finish<OP, T>(acc, nred);
    }
  });
}

template <ReduceOp OP, typename T>
void reduce_typed(const Tensor& x, const std::vector<int>& axes, Tensor& out) {
  const T* xp = x.data<T>();
  T* op = out.data<T>();
  int64_t nout = out.numel();
  if (nout == 0) return;
  if (x.numel() == 0) {
    // Reducing an empty set: the identity (Mean's 0/0 gives NaN as in NumPy).
    using A = acc_t<T>;
    T v = OP == ReduceOp::Mean ? finish<OP, T>(A(0), 0) : to_out<T>(identity<OP, A>());
    std::fill(op, op + nout, v);
    return;
  }
  // Merge runs of adjacent axes with the same role, ignoring size-1 axes.
  std::vector<int64_t> dims;
  std::vector<bool> red;
  for (int i = 0; i < x.rank(); ++i) {
    int64_t d = x.size(i);
    if (d == 1) continue;
    bool r = std::binary_search(axes.begin(), axes.end(), i);
    if (!dims.empty() && red.back() == r) dims.back() *= d;
    else {
      dims.push_back(d);
      red.push_back(r);
    }
  }
  int nred_groups = static_cast<int>(std::count(red.begin(), red.end(), true));
  if (nred_groups <= 1) {
    int64_t outer = 1, rd = 1, inner = 1;
    bool seen = false;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (red[i]) {
        rd = dims[i];
        seen = true;
      } else if (seen) {
        inner *= dims[i];
      } else {
        outer *= dims[i];
      }
    }
    if (inner == 1) reduce_rows<OP>(xp, op, outer, rd);
    else reduce_cols<OP>(xp, op, outer, rd, inner);
  } else {
    reduce_general<OP>(xp, op, dims, red);
  }
}

template <typename T>
void reduce_dispatch(ReduceOp op, const Tensor& x, const std::vector<int>& axes, Tensor& out) {
  switch (op) {
    case ReduceOp::Sum: return reduce_typed<ReduceOp::Sum, T>(x, axes, out);
    case ReduceOp::Mean: return reduce_typed<ReduceOp::Mean, T>(x, axes, out);
    case ReduceOp::Max: return reduce_typed<ReduceOp::Max, T>(x, axes, out);
    case ReduceOp::Min: return reduce_typed<ReduceOp::Min, T>(x, axes, out);
    case ReduceOp::Prod: return reduce_typed<ReduceOp::Prod, T>(x, axes, out);
    case ReduceOp::LogSumExp:
      if constexpr (std::is_floating_point_v<T>) return reduce_typed<ReduceOp::LogSumExp, T>(x, axes, out);
      else throw_dtype_error("logsumexp", x.dtype(), "float32 or float64");
  }
}

// outer/n/inner of a tensor around one axis.
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

template <typename T>
void arg_reduce_typed(ArgReduceOp op, const T* x, int32_t* out, const AxisView& v) {
  using A = acc_t<T>;
  int64_t total = v.outer * v.inner;
  bool is_max = op == ArgReduceOp::ArgMax;
  parallel_for(total, total * v.n > kParallelMin && total > 1, [&](int64_t t) {
    int64_t o = t / v.inner, j = t % v.inner;
    const T* p = x + o * v.n * v.inner + j;
    int64_t best_i = 0;
    A best = static_cast<A>(p[0]);
    for (int64_t i = 1; i < v.n; ++i) {
      A cur = static_cast<A>(p[i * v.inner]);
      if (is_max) {
        if (is_nan(best)) break;  // NaN is the maximum; its first occurrence wins
        if (cur > best || is_nan(cur)) {
          best = cur;
          best_i = i;
        }
      } else if (cur < best || (is_nan(best) && !is_nan(cur))) {
        best = cur;
        best_i = i;
      }
    }
    out[t] = static_cast<int32_t>(best_i);
  });
}

template <typename T>
void softmax_typed(const T* x, T* y, const AxisView& v, bool log) {
  using A = double;
  if (v.inner == 1) {
    parallel_for(v.outer, v.outer * v.n > kParallelMin && v.outer > 1, [&](int64_t o) {
      const T* xr = x + o * v.n;
      T* yr = y + o * v.n;
      T mx = -std::numeric_limits<T>::infinity();
      for (int64_t i = 0; i < v.n; ++i) mx = std::max(mx, xr[i]);
      A s = 0;
      if (log) {
        for (int64_t i = 0; i < v.n; ++i) s += std::exp(static_cast<A>(xr[i] - mx));
        // (x - max) first: subtracting max + log(s) in one go would lose digits for large logits.
        T ls = static_cast<T>(std::log(s));
        for (int64_t i = 0; i < v.n; ++i) yr[i] = (xr[i] - mx) - ls;
      } else {
        for (int64_t i = 0; i < v.n; ++i) {
          T e = std::exp(xr[i] - mx);
          yr[i] = e;
          s += e;
        }
        T inv = static_cast<T>(1.0 / s);
        for (int64_t i = 0; i < v.n; ++i) yr[i] *= inv;
      }
    });
    return;
  }
  int64_t nchunk = (v.inner + kInnerChunk - 1) / kInnerChunk, tasks = v.outer * nchunk;
  parallel_for(tasks, v.outer * v.n * v.inner > kParallelMin && tasks > 1, [&](int64_t t) {
    int64_t o = t / nchunk, j0 = (t % nchunk) * kInnerChunk, w = std::min(kInnerChunk, v.inner - j0);
    const T* xb = x + o * v.n * v.inner + j0;
    T* yb = y + o * v.n * v.inner + j0;
    T mx[kInnerChunk];
    A s[kInnerChunk];
    for (int64_t j = 0; j < w; ++j) {
      mx[j] = -std::numeric_limits<T>::infinity();
      s[j] = 0;
    }
    for (int64_t i = 0; i < v.n; ++i)
      for (int64_t j = 0; j < w; ++j) mx[j] = std::max(mx[j], xb[i * v.inner + j]);
    for (int64_t i = 0; i < v.n; ++i)
      for (int64_t j = 0; j < w; ++j) {
        T e = std::exp(xb[i * v.inner + j] - mx[j]);
        if (!log) yb[i * v.inner + j] = e;
        s[j] += e;
      }
    for (int64_t i = 0; i < v.n; ++i)
      for (int64_t j = 0; j < w; ++j) {
        T& dst = yb[i * v.inner + j];
        if (log) dst = (xb[i * v.inner + j] - mx[j]) - static_cast<T>(std::log(s[j]));
        else dst = static_cast<T>(dst / s[j]);
      }
  });
}

template <typename T>
void softmax_backward_typed(const T* y, const T* gy, T* gx, const AxisView& v, bool log) {
  // softmax: gx = y * (gy - sum(gy * y)); log_softmax: gx = gy - exp(y) * sum(gy).
  int64_t total = v.outer * v.inner;
  parallel_for(total, total * v.n > kParallelMin && total > 1, [&](int64_t t) {
    int64_t o = t / v.inner, j = t % v.inner, base = o * v.n * v.inner + j;
    double s = 0;
    for (int64_t i = 0; i < v.n; ++i) {
      int64_t k = base + i * v.inner;
      s += log ? static_cast<double>(gy[k]) : static_cast<double>(gy[k]) * static_cast<double>(y[k]);
    }
    T st = static_cast<T>(s);
    for (int64_t i = 0; i < v.n; ++i) {
      int64_t k = base + i * v.inner;
      gx[k] = log ? gy[k] - std::exp(y[k]) * st : y[k] * (gy[k] - st);
    }
  });
}

// Row-wise softmax of logits [rows, C] into probs; returns max + log(sum exp) per row via lse.
template <typename T>
inline double softmax_row(const T* x, T* p, int64_t c) {
  T mx = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < c; ++i) mx = std::max(mx, x[i]);
  double s = 0;
  for (int64_t i = 0; i < c; ++i) {
    T e = std::exp(x[i] - mx);
    p[i] = e;
    s += e;
  }
  T inv = static_cast<T>(1.0 / s);
  for (int64_t i = 0; i < c; ++i) p[i] *= inv;
  return static_cast<double>(mx) + std::log(s);
}

void check_float(const Tensor& t, const char* op) {
  if (!is_floating(t.dtype())) throw_dtype_error(op, t.dtype(), "float32 or float64");
}

template <typename T>
void softmax_xent_typed(const T* x, const T* t, T* p, T* l, int64_t rows, int64_t c) {
  parallel_for(rows, rows * c > kParallelMin && rows > 1, [&](int64_t r) {
    const T* xr = x + r * c;
    const T* tr = t + r * c;
    double lse = softmax_row(xr, p + r * c, c);
    double acc = 0;
    // Zero targets are skipped so that a -inf logit with no target mass gives 0, not NaN.
    for (int64_t i = 0; i < c; ++i)
      if (tr[i] != T(0)) acc += static_cast<double>(tr[i]) * (lse - static_cast<double>(xr[i]));
    l[r] = static_cast<T>(acc);
  });
}

template <typename T>
void sparse_xent_typed(const T* x, const int32_t* lab, T* p, T* l, int64_t rows, int64_t c) {
  parallel_for(rows, rows * c > kParallelMin && rows > 1, [&](int64_t r) {
    double lse = softmax_row(x + r * c, p + r * c, c);
    l[r] = static_cast<T>(lse - static_cast<double>(x[r * c + lab[r]]));
  });
}

template <typename T>
void sparse_xent_backward_typed(const T* p, const int32_t* lab, const T* g, T* gx, int64_t rows, int64_t c) {
  parallel_for(rows, rows * c > kParallelMin && rows > 1, [&](int64_t r) {
    T gr = g[r];
    for (int64_t i = 0; i < c; ++i) gx[r * c + i] = gr * p[r * c + i];
    gx[r * c + lab[r]] -= gr;
  });
}

template <typename T>
void sigmoid_bce_typed(const T* x, const T* t, T* o, int64_t n) {
  parallel_for(n, n > kParallelMin, [&](int64_t i) {
    o[i] = std::max(x[i], T(0)) - x[i] * t[i] + std::log1p(std::exp(-std::fabs(x[i])));
  });
}

void check_labels(const Tensor& labels, int64_t c) {
  if (labels.dtype() != DType::Int32) throw_dtype_error("sparse_softmax_cross_entropy labels", labels.dtype(), "int32");
  const int32_t* lab = labels.data<int32_t>();
  // Checked up front: nothing is written for a bad label, and no exception leaves a parallel region.
  for (int64_t r = 0; r < labels.numel(); ++r)
    if (lab[r] < 0 || lab[r] >= c)
      throw IndexError("label " + std::to_string(lab[r]) + " is out of range for " + std::to_string(c) + " classes");
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes, Tensor& out) {
  if (x.dtype() != out.dtype()) {
    // Mixed dtypes (e.g. bool summed into int32): convert once, then reduce in the output type.
    Tensor tmp = Tensor::empty(x.shape(), out.dtype());
    copy(x, tmp);
    reduce(op, tmp, axes, out);
    return;
  }
  RK_DISPATCH_ALL(x.dtype(), "reduce", [&] { reduce_dispatch<scalar_t>(op, x, axes, out); });
}

void CpuBackend::arg_reduce(ArgReduceOp op, const Tensor& x, int axis, Tensor& out) {
  AxisView v = axis_view(x.shape(), axis);
  if (out.numel() == 0) return;
  if (v.n == 0)
    throw ValueError(std::string(op == ArgReduceOp::ArgMax ? "argmax" : "argmin") +
                     ": cannot reduce an empty axis of a tensor of shape " + x.shape().str());
  int32_t* o = out.data<int32_t>();
  RK_DISPATCH_ALL(x.dtype(), "arg_reduce", [&] { arg_reduce_typed<scalar_t>(op, x.data<scalar_t>(), o, v); });
}

void CpuBackend::softmax(const Tensor& x, Tensor& y, int axis, bool log) {
  AxisView v = axis_view(x.shape(), axis);
  if (x.numel() == 0) return;
  RK_DISPATCH_FLOAT(x.dtype(), log ? "log_softmax" : "softmax",
                    [&] { softmax_typed<scalar_t>(x.data<scalar_t>(), y.data<scalar_t>(), v, log); });
}

void CpuBackend::softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, int axis, bool log) {
  AxisView v = axis_view(y.shape(), axis);
  if (y.numel() == 0) return;
  RK_DISPATCH_FLOAT(y.dtype(), "softmax_backward", [&] {
    softmax_backward_typed<scalar_t>(y.data<scalar_t>(), gy.data<scalar_t>(), gx.data<scalar_t>(), v, log);
  });
}

void CpuBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& loss, Tensor& probs) {
  check_float(logits, "softmax_cross_entropy");
  int64_t c = logits.rank() ? logits.size(-1) : 1;
  int64_t rows = c ? logits.numel() / c : loss.numel();
  RK_DISPATCH_FLOAT(logits.dtype(), "softmax_cross_entropy", [&] {
    softmax_xent_typed<scalar_t>(logits.data<scalar_t>(), target.data<scalar_t>(), probs.data<scalar_t>(),
                                 loss.data<scalar_t>(), rows, c);
  });
}

void CpuBackend::sparse_softmax_cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& loss,
                                              Tensor& probs) {
  check_float(logits, "sparse_softmax_cross_entropy");
  int64_t c = logits.size(-1);
  check_labels(labels, c);
  RK_DISPATCH_FLOAT(logits.dtype(), "sparse_softmax_cross_entropy", [&] {
    sparse_xent_typed<scalar_t>(logits.data<scalar_t>(), labels.data<int32_t>(), probs.data<scalar_t>(),
                                loss.data<scalar_t>(), labels.numel(), c);
  });
}

void CpuBackend::sparse_softmax_cross_entropy_backward(const Tensor& probs, const Tensor& labels,
                                                       const Tensor& gloss, Tensor& glogits) {
  check_float(probs, "sparse_softmax_cross_entropy_backward");
  int64_t c = probs.size(-1);
  check_labels(labels, c);
  RK_DISPATCH_FLOAT(probs.dtype(), "sparse_softmax_cross_entropy_backward", [&] {
    sparse_xent_backward_typed<scalar_t>(probs.data<scalar_t>(), labels.data<int32_t>(), gloss.data<scalar_t>(),
                                         glogits.data<scalar_t>(), labels.numel(), c);
  });
}

void CpuBackend::sigmoid_binary_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& out) {
  check_float(logits, "sigmoid_binary_cross_entropy");
  RK_DISPATCH_FLOAT(logits.dtype(), "sigmoid_binary_cross_entropy", [&] {
    sigmoid_bce_typed<scalar_t>(logits.data<scalar_t>(), target.data<scalar_t>(), out.data<scalar_t>(),
                                logits.numel());
  });
}

}  // namespace rk::cpu
