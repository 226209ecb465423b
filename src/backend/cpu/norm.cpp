// CPU batch normalization of x viewed as [outer, C, inner]: statistics in one pass (shifted sums in
// double), normalization in a second; the backward likewise (two channel sums, then gx). Work is
// cut into fixed blocks of rows (and of channels when a row is long), each writing its own
// partial sums, which are then added in block order: results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/parallel_for.h"

namespace rk::cpu {

namespace {

// Below this many elements a fork/join costs more than it saves (as in reduce.cpp).
constexpr int64_t kParallelMin = 32768;
// Elements one block of the channel sums covers: its accumulators stay in L1.
constexpr int64_t kBlock = 16384;

struct Geometry {
  int64_t outer, c, inner;
  int64_t m() const { return outer * inner; }
  int64_t numel() const { return outer * c * inner; }
};

Geometry geometry(const Tensor& x) { return {x.size(0), x.size(1), x.size(2)}; }

// Per-channel sums s1[c], s2[c] of acc(c, offset, a1, a2) over every element (offset into the
// [outer, C, inner] data) of channel c. acc adds its two terms into a1 and a2.
template <typename Acc>
void channel_sums(const Geometry& g, Acc&& acc, std::vector<double>& s1, std::vector<double>& s2) {
  const int64_t row = g.c * g.inner;
  const int64_t rows_per_block = std::max<int64_t>(1, kBlock / std::max<int64_t>(1, row));
  const int64_t chans_per_block = std::max<int64_t>(
      1, rows_per_block > 1 ? g.c : std::min<int64_t>(g.c, kBlock / std::max<int64_t>(1, g.inner)));
  const int64_t row_blocks = (g.outer + rows_per_block - 1) / rows_per_block;
  const int64_t chan_blocks = (g.c + chans_per_block - 1) / chans_per_block;
  // Partial sums per row block and channel; each (row block, channel block) task owns its slice.
  std::vector<double> p1(static_cast<size_t>(row_blocks * g.c), 0.0), p2(p1.size(), 0.0);
  parallel_for(row_blocks * chan_blocks, g.numel() >= kParallelMin, [&](int64_t t) {
    const int64_t rb = t / chan_blocks, cb = t % chan_blocks;
    const int64_t o0 = rb * rows_per_block, o1 = std::min(g.outer, o0 + rows_per_block);
    const int64_t c0 = cb * chans_per_block, c1 = std::min(g.c, c0 + chans_per_block);
    double* a1 = p1.data() + rb * g.c;
    double* a2 = p2.data() + rb * g.c;
    for (int64_t o = o0; o < o1; ++o) {
      if (g.inner == 1) {
        for (int64_t c = c0; c < c1; ++c) acc(c, o * g.c + c, a1[c], a2[c]);
      } else {
        for (int64_t c = c0; c < c1; ++c) {
          double r1 = 0, r2 = 0;
          const int64_t base = (o * g.c + c) * g.inner;
          for (int64_t i = 0; i < g.inner; ++i) acc(c, base + i, r1, r2);
          a1[c] += r1;
          a2[c] += r2;
        }
      }
    }
  });
  s1.assign(static_cast<size_t>(g.c), 0.0);
  s2.assign(static_cast<size_t>(g.c), 0.0);
  for (int64_t rb = 0; rb < row_blocks; ++rb)
    for (int64_t c = 0; c < g.c; ++c) {
      s1[static_cast<size_t>(c)] += p1[static_cast<size_t>(rb * g.c + c)];
      s2[static_cast<size_t>(c)] += p2[static_cast<size_t>(rb * g.c + c)];
    }
}

// out = in * a[c] + b[c] per element of channel c (the normalization, and the shape of gx's formula
// with a second input: out = u * a[c] + v * k[c] + b[c] when v is given).
template <typename T>
void affine(const Geometry& g, const T* u, const T* v, const T* a, const T* k, const T* b, T* out) {
  if (g.inner == 1) {
    parallel_range(g.outer, std::max<int64_t>(1, kParallelMin / std::max<int64_t>(1, g.c)), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const int64_t base = o * g.c;
        if (v) {
          for (int64_t c = 0; c < g.c; ++c) out[base + c] = u[base + c] * a[c] + v[base + c] * k[c] + b[c];
        } else {
          for (int64_t c = 0; c < g.c; ++c) out[base + c] = u[base + c] * a[c] + b[c];
        }
      }
    });
    return;
  }
  parallel_range(g.outer * g.c, std::max<int64_t>(1, kParallelMin / g.inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r % g.c, base = r * g.inner;
      const T ac = a[c], bc = b[c];
      if (v) {
        const T kc = k[c];
        for (int64_t i = 0; i < g.inner; ++i) out[base + i] = u[base + i] * ac + v[base + i] * kc + bc;
      } else {
        for (int64_t i = 0; i < g.inner; ++i) out[base + i] = u[base + i] * ac + bc;
      }
    }
  });
}

// y = x * scale[c] + (beta[c] - mean[c] * scale[c]), scale = gamma / sqrt(var + eps) (Keras's arrangement).
template <typename T>
void normalize(const Geometry& g, const T* x, const T* gamma, const T* beta, const std::vector<double>& mean,
               const std::vector<double>& invstd, T* y) {
  std::vector<T> a(static_cast<size_t>(g.c)), b(a.size());
  for (size_t c = 0; c < a.size(); ++c) {
    const double s = static_cast<double>(gamma[c]) * invstd[c];
    a[c] = static_cast<T>(s);
    b[c] = static_cast<T>(static_cast<double>(beta[c]) - mean[c] * s);
  }
  affine<T>(g, x, nullptr, a.data(), nullptr, b.data(), y);
}

template <typename T>
void forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& y, Tensor& mean,
                      Tensor& var, Tensor& invstd) {
  const Geometry g = geometry(x);
  const T* xp = x.data<T>();
  // Sums of x - shift[c] with shift a value of the channel: E[d^2] - E[d]^2 then cancels little.
  std::vector<double> shift(static_cast<size_t>(g.c), 0.0);
  if (g.m() > 0)
    for (int64_t c = 0; c < g.c; ++c) shift[static_cast<size_t>(c)] = static_cast<double>(xp[c * g.inner]);
  std::vector<double> s1, s2;
  channel_sums(
      g,
      [&](int64_t c, int64_t off, double& a1, double& a2) {
        const double d = static_cast<double>(xp[off]) - shift[static_cast<size_t>(c)];
        a1 += d;
        a2 += d * d;
      },
      s1, s2);
  const double m = static_cast<double>(g.m());
  std::vector<double> mu(s1.size()), inv(s1.size());
  T* mp = mean.data<T>();
  T* vp = var.data<T>();
  T* ip = invstd.data<T>();
  for (size_t c = 0; c < s1.size(); ++c) {
    const double e = s1[c] / m;
    const double v = std::max(0.0, s2[c] / m - e * e);
    mu[c] = shift[c] + e;
    inv[c] = 1.0 / std::sqrt(v + eps);
    mp[c] = static_cast<T>(mu[c]);
    vp[c] = static_cast<T>(v);
    ip[c] = static_cast<T>(inv[c]);
  }
  normalize<T>(g, xp, gamma.data<T>(), beta.data<T>(), mu, inv, y.data<T>());
}

template <typename T>
void forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                       const Tensor& var, double eps, Tensor& y) {
  const Geometry g = geometry(x);
  std::vector<double> mu(static_cast<size_t>(g.c)), inv(mu.size());
  const T* mp = mean.data<T>();
  const T* vp = var.data<T>();
  for (size_t c = 0; c < mu.size(); ++c) {
    mu[c] = static_cast<double>(mp[c]);
    inv[c] = 1.0 / std::sqrt(static_cast<double>(vp[c]) + eps);
  }
  normalize<T>(g, x.data<T>(), gamma.data<T>(), beta.data<T>(), mu, inv, y.data<T>());
}

template <typename T>
void backward(const Tensor& x, const Tensor& gy, const Tensor& gamma, const Tensor& mean, const Tensor& invstd,
              Tensor& gx, Tensor& ggamma, Tensor& gbeta) {
  const Geometry g = geometry(x);
  const T* xp = x.data<T>();
  const T* gp = gy.data<T>();
  const T* mp = mean.data<T>();
  // s1 = sum(gy), s2 = sum(gy * (x - mean)) per channel.
  std::vector<double> s1, s2;
  channel_sums(
      g,
      [&](int64_t c, int64_t off, double& a1, double& a2) {
        const double gv = static_cast<double>(gp[off]);
        a1 += gv;
        a2 += gv * (static_cast<double>(xp[off]) - static_cast<double>(mp[c]));
      },
      s1, s2);
  const T* ip = invstd.data<T>();
  const T* gam = gamma.data<T>();
  const double m = static_cast<double>(g.m());
  if (gbeta.defined()) {
    T* out = gbeta.data<T>();
    for (size_t c = 0; c < s1.size(); ++c) out[c] = static_cast<T>(s1[c]);
  }
  if (ggamma.defined()) {
    T* out = ggamma.data<T>();
    for (size_t c = 0; c < s2.size(); ++c) out[c] = static_cast<T>(s2[c] * static_cast<double>(ip[c]));
  }
  if (!gx.defined()) return;
  // gx = a gy - k (x - mean) - a s1 / m with a = gamma invstd, k = a invstd^2 s2 / m.
  std::vector<T> a(s1.size()), k(a.size()), b(a.size());
  for (size_t c = 0; c < a.size(); ++c) {
    const double inv = static_cast<double>(ip[c]);
    const double ac = static_cast<double>(gam[c]) * inv;
    const double kc = ac * inv * inv * s2[c] / m;
    a[c] = static_cast<T>(ac);
    k[c] = static_cast<T>(-kc);
    b[c] = static_cast<T>(kc * static_cast<double>(mp[c]) - ac * s1[c] / m);
  }
  affine<T>(g, gp, xp, a.data(), k.data(), b.data(), gx.data<T>());
}

}  // namespace

void CpuBackend::batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                                             Tensor& y, Tensor& mean, Tensor& var, Tensor& invstd) {
  RK_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] { forward_training<scalar_t>(x, gamma, beta, eps, y, mean, var, invstd); });
}

void CpuBackend::batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                              const Tensor& mean, const Tensor& var, double eps, Tensor& y) {
  RK_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] { forward_inference<scalar_t>(x, gamma, beta, mean, var, eps, y); });
}

void CpuBackend::batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& gamma, const Tensor& mean,
                                     const Tensor& invstd, double /*eps: invstd already holds it*/, Tensor& gx,
                                     Tensor& ggamma, Tensor& gbeta) {
  if (!gx.defined() && !ggamma.defined() && !gbeta.defined()) return;
  RK_DISPATCH_FLOAT(x.dtype(), "batch_norm gradient",
                    [&] { backward<scalar_t>(x, gy, gamma, mean, invstd, gx, ggamma, gbeta); });
}

}  // namespace rk::cpu
