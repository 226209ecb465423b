// Convolution engine: forward, backward-data, backward-filter and the fused backward (relu mask, bias
// sum) against naive loops written out here (1D/2D/3D, strides, dilation, asymmetric padding, groups,
// depthwise, bias, relu; shapes chosen to reach every kernel: small-K, implicit GEMM, depthwise,
// im2col + GEMM, direct) at every SIMD level and with 1 and 2 threads, float64 gradchecks of conv and
// conv_transpose, and error cases (class and message).
#include <omp.h>

#include <cmath>
#include <functional>
#include <string>

#include "backend/backend.h"
#include "backend/cpu/cpu_features.h"
#include "test_util.h"

namespace {

using namespace rk;
using rk::testing::expect_values, rk::testing::gradcheck, rk::testing::make, rk::testing::rand, rk::testing::values;

// One convolution problem; vectors have one entry per spatial axis.
struct Case {
  std::string name;
  int64_t n;
  std::vector<int64_t> in;  // spatial extents
  int64_t cin, cout;
  std::vector<int64_t> win, stride, dil, pb, pa;
  int64_t groups = 1;
  bool bias = false, relu = false;

  ConvParams params() const {
    ConvParams p;
    p.window = win;
    p.stride = stride;
    p.dilation = dil;
    p.pad_before = pb;
    p.pad_after = pa;
    p.groups = groups;
    return p;
  }
  std::vector<int64_t> out() const {
    std::vector<int64_t> o(in.size());
    for (size_t a = 0; a < in.size(); ++a) o[a] = (in[a] + pb[a] + pa[a] - dil[a] * (win[a] - 1) - 1) / stride[a] + 1;
    return o;
  }
  Shape xshape() const { return with_nc(in, cin); }
  Shape yshape() const { return with_nc(out(), cout); }
  Shape kshape() const {
    std::vector<int64_t> d = win;
    d.push_back(cin / groups);
    d.push_back(cout);
    return Shape(d);
  }
  Shape with_nc(std::vector<int64_t> s, int64_t c) const {
    s.insert(s.begin(), n);
    s.push_back(c);
    return Shape(s);
  }
};

// Visits every (output element, kernel element, input element) triple of the convolution that
// lies inside the input: f(y_index, w_index, x_index). Spatial axes are padded to 3 by extent 1.
void visit(const Case& c, const std::function<void(int64_t, int64_t, int64_t)>& f) {
  const size_t r = c.in.size();
  std::vector<int64_t> in(3, 1), out(3, 1), win(3, 1), st(3, 1), dl(3, 1), pb(3, 0);
  const std::vector<int64_t> o = c.out();
  for (size_t a = 0; a < r; ++a) {
    in[3 - r + a] = c.in[a];
    out[3 - r + a] = o[a];
    win[3 - r + a] = c.win[a];
    st[3 - r + a] = c.stride[a];
    dl[3 - r + a] = c.dil[a];
    pb[3 - r + a] = c.pb[a];
  }
  const int64_t cig = c.cin / c.groups, cog = c.cout / c.groups;
  for (int64_t b = 0; b < c.n; ++b)
    for (int64_t o0 = 0; o0 < out[0]; ++o0)
      for (int64_t o1 = 0; o1 < out[1]; ++o1)
        for (int64_t o2 = 0; o2 < out[2]; ++o2)
          for (int64_t co = 0; co < c.cout; ++co) {
            const int64_t grp = co / cog;
            const int64_t yi = (((b * out[0] + o0) * out[1] + o1) * out[2] + o2) * c.cout + co;
            for (int64_t k0 = 0; k0 < win[0]; ++k0)
              for (int64_t k1 = 0; k1 < win[1]; ++k1)
                for (int64_t k2 = 0; k2 < win[2]; ++k2) {
                  const int64_t i0 = o0 * st[0] - pb[0] + k0 * dl[0], i1 = o1 * st[1] - pb[1] + k1 * dl[1],
                                i2 = o2 * st[2] - pb[2] + k2 * dl[2];
                  if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1] || i2 < 0 || i2 >= in[2]) continue;
                  for (int64_t ci = 0; ci < cig; ++ci) {
                    const int64_t xi = (((b * in[0] + i0) * in[1] + i1) * in[2] + i2) * c.cin + grp * cig + ci;
                    const int64_t wi = (((k0 * win[1] + k1) * win[2] + k2) * cig + ci) * c.cout + co;
                    f(yi, wi, xi);
                  }
                }
          }
}

std::vector<double> ref_forward(const Case& c, const std::vector<double>& x, const std::vector<double>& w,
                                const std::vector<double>& bias) {
  std::vector<double> y(static_cast<size_t>(c.yshape().numel()), 0.0);
  visit(c, [&](int64_t yi, int64_t wi, int64_t xi) { y[yi] += x[xi] * w[wi]; });
  if (c.bias)
    for (size_t i = 0; i < y.size(); ++i) y[i] += bias[i % static_cast<size_t>(c.cout)];
  if (c.relu)
    for (double& v : y) v = v > 0 ? v : 0;
  return y;
}

std::vector<double> ref_backward_data(const Case& c, const std::vector<double>& gy, const std::vector<double>& w) {
  std::vector<double> gx(static_cast<size_t>(c.xshape().numel()), 0.0);
  visit(c, [&](int64_t yi, int64_t wi, int64_t xi) { gx[xi] += gy[yi] * w[wi]; });
  return gx;
}

std::vector<double> ref_backward_filter(const Case& c, const std::vector<double>& x, const std::vector<double>& gy) {
  std::vector<double> gw(static_cast<size_t>(c.kshape().numel()), 0.0);
  visit(c, [&](int64_t yi, int64_t wi, int64_t xi) { gw[wi] += x[xi] * gy[yi]; });
  return gw;
}

std::vector<Case> cases() {
  return {
      {"1d stride2 dil2 asympad", 2, {11}, 3, 4, {3}, {2}, {2}, {2}, {1}},
      {"1d bias relu", 3, {7}, 2, 5, {2}, {1}, {1}, {0}, {1}, 1, true, true},
      {"2d 3x3 same", 2, {5, 6}, 3, 4, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, true, false},
      {"2d stride2 asym pad", 2, {7, 6}, 4, 3, {3, 2}, {2, 2}, {1, 1}, {0, 1}, {1, 0}},
      {"2d dilation", 1, {8, 7}, 2, 3, {3, 2}, {1, 2}, {2, 3}, {1, 0}, {0, 2}, 1, true, true},
      {"2d groups2", 2, {5, 5}, 4, 6, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 2, true, false},
      {"2d depthwise", 2, {6, 5}, 4, 4, {3, 3}, {1, 2}, {1, 1}, {1, 1}, {1, 1}, 4, true, true},
      {"2d depthwise mult3", 2, {5, 5}, 3, 9, {3, 2}, {2, 1}, {1, 2}, {0, 1}, {2, 1}, 3, true, false},
      {"2d cin1", 3, {8, 8}, 1, 7, {3, 3}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, 1, true, true},
      {"2d pointwise", 2, {4, 3}, 5, 6, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, 1, true, false},
      {"2d pointwise groups", 2, {3, 3}, 6, 4, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, 2},
      {"2d 1x1 stride2", 2, {5, 5}, 3, 4, {1, 1}, {2, 2}, {1, 1}, {0, 0}, {0, 0}},
      {"3d", 2, {4, 5, 3}, 2, 3, {2, 3, 2}, {1, 2, 1}, {1, 1, 2}, {1, 1, 0}, {0, 1, 1}, 1, true, true},
      {"3d depthwise", 1, {4, 4, 4}, 3, 3, {2, 2, 2}, {2, 1, 1}, {1, 1, 1}, {0, 1, 1}, {1, 0, 1}, 3},
      // Long patches (the implicit-GEMM kernels under AVX-512): strides, dilation, asymmetric padding,
      // groups, output widths that are not a multiple of 16.
      {"2d long stride dil asym", 2, {9, 8}, 12, 40, {3, 2}, {2, 1}, {1, 2}, {1, 0}, {2, 1}, 1, true, true},
      {"1d long groups3", 3, {10}, 24, 18, {3}, {1}, {2}, {2}, {1}, 3, true, false},
      // Mixed methods under AVX-512 (forward implicit; data GEMM with > 32 channels; filter GEMM past 48K weights).
      {"2d 40 channels", 2, {6, 7}, 40, 100, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, true, true},
      {"2d 48 to 150 channels", 2, {6, 6}, 48, 150, {3, 3}, {1, 2}, {1, 1}, {0, 1}, {1, 1}, 1, true, false},
      {"3d long", 2, {4, 4, 5}, 8, 20, {2, 2, 3}, {1, 2, 1}, {1, 1, 1}, {0, 1, 1}, {1, 0, 1}, 1, true, true},
      {"2d cin1 7x7", 2, {12, 11}, 1, 20, {7, 7}, {1, 2}, {1, 1}, {3, 3}, {3, 2}, 1, true, true},
      {"2d depthwise 40 channels", 2, {9, 7}, 40, 40, {3, 3}, {2, 1}, {1, 2}, {1, 2}, {1, 1}, 40, true, true},
      {"2d depthwise 80 channels", 3, {6, 6}, 80, 80, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 80, false, false},
      // Large enough for several chunks and both threads (the convnet's two conv layers).
      {"convnet conv2", 6, {13, 13}, 32, 64, {3, 3}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, 1, true, true},
      {"convnet conv1", 8, {28, 28}, 1, 32, {3, 3}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, 1, true, true},
      {"wide padded", 3, {9, 10}, 16, 24, {5, 5}, {1, 1}, {1, 1}, {2, 2}, {2, 2}, 1, true, false},
  };
}

std::vector<cpu::SimdLevel> levels() {
  std::vector<cpu::SimdLevel> out{cpu::SimdLevel::Portable};
  const cpu::SimdLevel d = cpu::detected_simd_level();
  if (d >= cpu::SimdLevel::Avx2) out.push_back(cpu::SimdLevel::Avx2);
  if (d == cpu::SimdLevel::Avx512) out.push_back(cpu::SimdLevel::Avx512);
  return out;
}

// Restores the SIMD level and thread count so test order does not matter.
struct EnvGuard {
  cpu::SimdLevel level = cpu::active_simd_level();
  int threads = num_threads();
  ~EnvGuard() {
    cpu::set_simd_level(level);
    set_num_threads(threads);
  }
};

// The inputs of a case and the naive-loop results that do not depend on the backend's own output.
struct Reference {
  std::vector<double> xv, wv, bv, gv;  // x, kernel, bias, upstream gradient
  std::vector<double> y, gx, gw;       // forward, backward-data and backward-filter of gv
  explicit Reference(const Case& c)
      : xv(rk::testing::seq(c.xshape().numel(), -1, 1, 3)),
        wv(rk::testing::seq(c.kshape().numel(), -1, 1, 4)),
        bv(rk::testing::seq(c.cout, -1, 1, 5)),
        gv(rk::testing::seq(c.yshape().numel(), -1, 1, 6)),
        y(ref_forward(c, xv, wv, bv)),
        gx(ref_backward_data(c, gv, wv)),
        gw(ref_backward_filter(c, xv, gv)) {}
};

// Runs the backend passes of `c` in `dt` and compares them with the naive loops.
void check_backend(const Case& c, const Reference& ref, DType dt, const std::string& where) {
  SCOPED_TRACE(c.name + " " + where);
  const double tol = dt == DType::Float64 ? 1e-10 : 2e-4;
  const std::vector<double>& xv = ref.xv;
  const std::vector<double>& wv = ref.wv;
  const std::vector<double>& bv = ref.bv;
  const std::vector<double>& gv = ref.gv;
  Tensor x = make(c.xshape(), xv, dt), w = make(c.kshape(), wv, dt);
  Tensor b = c.bias ? make(Shape({c.cout}), bv, dt) : Tensor();
  Tensor gy = make(c.yshape(), gv, dt);
  Backend& be = backend_for(cpu_device());
  const ConvParams p = c.params();

  Tensor y = Tensor::empty(c.yshape(), dt);
  be.fill(y, std::nan(""));
  be.conv_forward(x, w, b, y, p, c.relu);
  expect_values(y, ref.y, tol, tol);

  Tensor gx = Tensor::empty(c.xshape(), dt);
  be.fill(gx, std::nan(""));
  be.conv_backward_data(gy, w, gx, p);
  expect_values(gx, ref.gx, tol, tol);

  Tensor gw = Tensor::empty(c.kshape(), dt);
  be.fill(gw, std::nan(""));
  be.conv_backward_filter(x, gy, gw, p);
  expect_values(gw, ref.gw, tol * 10, tol);

  // All gradients in one call, through the relu mask (y > 0) when the case has relu.
  std::vector<double> gm = gv, yv = values(y), gb_ref(static_cast<size_t>(c.cout), 0.0);
  for (size_t i = 0; i < gm.size(); ++i) {
    if (c.relu && !(yv[i] > 0)) gm[i] = 0;
    gb_ref[i % static_cast<size_t>(c.cout)] += gm[i];
  }
  Tensor gx2 = Tensor::empty(c.xshape(), dt), gw2 = Tensor::empty(c.kshape(), dt), gb2 = Tensor::empty(Shape({c.cout}), dt);
  for (Tensor* t : {&gx2, &gw2, &gb2}) be.fill(*t, std::nan(""));
  be.conv_backward(x, w, y, gy, gx2, gw2, gb2, p, c.relu);
  const std::vector<double> gw_masked = c.relu ? ref_backward_filter(c, xv, gm) : ref.gw;
  expect_values(gx2, c.relu ? ref_backward_data(c, gm, wv) : ref.gx, tol, tol);
  expect_values(gw2, gw_masked, tol * 10, tol);
  expect_values(gb2, gb_ref, tol * 10, tol);
  // Only the filter gradient (a first layer without bias): the other outputs stay undefined.
  Tensor none_x, none_b, gw3 = Tensor::empty(c.kshape(), dt);
  be.conv_backward(x, Tensor(), y, gy, none_x, gw3, none_b, p, c.relu);
  expect_values(gw3, gw_masked, tol * 10, tol);
}

TEST(ConvBackend, MatchesNaiveLoopsFloat64) {
  for (const Case& c : cases()) check_backend(c, Reference(c), DType::Float64, "float64");
}

TEST(ConvBackend, MatchesNaiveLoopsFloat32EveryLevelAndThreadCount) {
  EnvGuard guard;
  for (const Case& c : cases()) {
    const Reference ref(c);
    for (cpu::SimdLevel lv : levels()) {
      cpu::set_simd_level(lv);
      for (int nt : {1, 2}) {
        set_num_threads(nt);
        check_backend(c, ref, DType::Float32, std::string(cpu::simd_level_name(lv)) + " threads " + std::to_string(nt));
      }
    }
  }
}

TEST(ConvBackend, EmptyBatchGivesZeroFilterGradient) {
  Case c{"empty", 0, {5, 5}, 2, 3, {3, 3}, {1, 1}, {1, 1}, {0, 0}, {0, 0}};
  Backend& be = backend_for(cpu_device());
  Tensor x = Tensor::empty(c.xshape(), DType::Float32), gy = Tensor::empty(c.yshape(), DType::Float32);
  Tensor gw = Tensor::empty(c.kshape(), DType::Float32);
  be.fill(gw, 7);
  be.conv_backward_filter(x, gy, gw, c.params());
  expect_values(gw, std::vector<double>(static_cast<size_t>(c.kshape().numel()), 0.0));
}

TEST(ConvOp, HandComputed1D) {
  // x = 1..5, kernel (2, 1, 1) = (1, 10), stride 2, one zero before: y = (10, 2 + 30, 4 + 50).
  Tensor x = make({1, 5, 1}, {1, 2, 3, 4, 5});
  Tensor k = make({2, 1, 1}, {1, 10});
  ConvParams p;
  p.window = {2};
  p.stride = {2};
  p.dilation = {1};
  p.pad_before = {1};
  p.pad_after = {0};
  Tensor y = ops::conv(x, k, Tensor(), p);
  EXPECT_EQ(y.shape(), Shape({1, 3, 1}));
  expect_values(y, {10, 32, 54}, 1e-12);
}

TEST(ConvOp, ForwardMatchesNaiveWithPromotion) {
  // int32 input with a float32 kernel computes in float32.
  Case c = cases()[2];
  std::vector<double> xv(static_cast<size_t>(c.xshape().numel()));
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<double>(static_cast<int64_t>(i % 7) - 3);
  const std::vector<double> wv = rk::testing::seq(c.kshape().numel(), -1, 1, 4);
  const std::vector<double> bv = rk::testing::seq(c.cout, -1, 1, 5);
  Tensor y = ops::conv(make(c.xshape(), xv, DType::Int32), make(c.kshape(), wv, DType::Float32),
                       make(Shape({c.cout}), bv, DType::Float32), c.params(), c.relu);
  EXPECT_EQ(y.dtype(), DType::Float32);
  expect_values(y, ref_forward(c, xv, wv, bv), 1e-5, 1e-5);
}

TEST(ConvOp, TransposeHandComputed1D) {
  // Adjoint of a stride-2 conv with window 3: each x scatters x * (1, 10, 100) two steps apart.
  Tensor x = make({1, 2, 1}, {1, 2});
  Tensor k = make({3, 1, 1}, {1, 10, 100});
  ConvParams p;
  p.window = {3};
  p.stride = {2};
  p.dilation = {1};
  p.pad_before = {0};
  p.pad_after = {0};
  Tensor y = ops::conv_transpose(x, k, make({1}, {0.5}), p, {5});
  EXPECT_EQ(y.shape(), Shape({1, 5, 1}));
  expect_values(y, {1.5, 10.5, 102.5, 20.5, 200.5}, 1e-12);
}

TEST(ConvOp, TransposeIsTheAdjointOfConv) {
  // <conv(u), v> == <conv_transpose(v), u> for a 2D grouped, strided, dilated, padded geometry.
  Case c{"adj", 2, {7, 6}, 4, 6, {3, 2}, {2, 1}, {1, 2}, {1, 0}, {0, 1}, 2};
  Tensor u = rand(c.xshape(), -1, 1, 11), v = rand(c.yshape(), -1, 1, 12), w = rand(c.kshape(), -1, 1, 13);
  // conv kernel [*win, Cin/g, Cout] is the transpose kernel [*win, Cout_t/g, Cin_t] of the map y -> x.
  Tensor cu = ops::conv(u, w, Tensor(), c.params());
  Tensor tv = ops::conv_transpose(v, w, Tensor(), c.params(), c.in);
  EXPECT_EQ(tv.shape(), c.xshape());
  std::vector<double> a = values(cu), bv = values(v), t = values(tv), uu = values(u);
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < a.size(); ++i) lhs += a[i] * bv[i];
  for (size_t i = 0; i < t.size(); ++i) rhs += t[i] * uu[i];
  EXPECT_NEAR(lhs, rhs, 1e-10 * (1 + std::fabs(lhs)));
}

// ------------------------------------------------------------------------ gradients

void gradcheck_conv(const Case& c) {
  SCOPED_TRACE(c.name);
  const ConvParams p = c.params();
  std::vector<Tensor> in{rand(c.xshape(), -1, 1, 21), rand(c.kshape(), -1, 1, 22)};
  if (c.bias) in.push_back(rand(Shape({c.cout}), -1, 1, 23));
  const bool relu = c.relu;
  gradcheck([&](const std::vector<Tensor>& t) { return ops::conv(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), p, relu); },
            in);
}

TEST(ConvGrad, Conv1D) {
  gradcheck_conv({"1d", 2, {9}, 2, 3, {3}, {2}, {2}, {2}, {1}, 1, true, false});
  gradcheck_conv({"1d relu groups", 2, {8}, 4, 6, {2}, {1}, {1}, {1}, {0}, 2, true, true});
}

TEST(ConvGrad, Conv2D) {
  gradcheck_conv({"2d", 2, {5, 4}, 3, 2, {3, 2}, {1, 1}, {1, 1}, {1, 0}, {1, 1}, 1, true, false});
  gradcheck_conv({"2d stride dil", 1, {7, 6}, 2, 3, {2, 3}, {2, 1}, {2, 1}, {0, 1}, {1, 1}, 1, true, true});
  gradcheck_conv({"2d groups", 2, {4, 4}, 4, 4, {3, 3}, {1, 2}, {1, 1}, {1, 1}, {1, 0}, 2, true, false});
  gradcheck_conv({"2d depthwise", 2, {5, 4}, 3, 6, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 3, true, true});
  gradcheck_conv({"2d cin1 no bias", 2, {5, 5}, 1, 4, {3, 3}, {1, 1}, {1, 1}, {0, 0}, {0, 0}, 1, false, false});
}

TEST(ConvGrad, Conv3D) {
  gradcheck_conv({"3d", 1, {3, 4, 3}, 2, 2, {2, 2, 2}, {1, 2, 1}, {1, 1, 1}, {1, 0, 1}, {0, 1, 0}, 1, true, false});
}

void gradcheck_transpose(const Case& c) {
  SCOPED_TRACE(c.name);
  const ConvParams p = c.params();
  // The transpose maps the forward conv's output shape back to its input shape.
  const std::vector<int64_t> out = c.in;
  const int64_t cout_t = c.cin;
  std::vector<Tensor> in{rand(c.yshape(), -1, 1, 31), rand(c.kshape(), -1, 1, 32)};
  if (c.bias) in.push_back(rand(Shape({cout_t}), -1, 1, 33));
  gradcheck(
      [&](const std::vector<Tensor>& t) {
        return ops::conv_transpose(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), p, out);
      },
      in);
}

TEST(ConvGrad, Transpose1D) {
  gradcheck_transpose({"t1d", 2, {9}, 2, 3, {3}, {2}, {1}, {1}, {1}, 1, true});
  gradcheck_transpose({"t1d dil groups", 1, {8}, 4, 2, {2}, {1}, {2}, {0}, {1}, 2, true});
}

TEST(ConvGrad, Transpose2D) {
  gradcheck_transpose({"t2d", 2, {6, 5}, 2, 3, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 1, true});
  gradcheck_transpose({"t2d groups", 1, {5, 5}, 4, 2, {2, 3}, {1, 2}, {2, 1}, {0, 1}, {1, 0}, 2, false});
}

TEST(ConvGrad, FirstLayerInputGetsNoGradient) {
  Case c = cases()[8];
  Tensor x = rand(c.xshape(), -1, 1, 41), k = rand(c.kshape(), -1, 1, 42);
  k.set_requires_grad(true);
  autograd::backward(ops::sum(ops::conv(x, k, Tensor(), c.params(), true)));
  EXPECT_FALSE(autograd::grad(x).defined());
  ASSERT_TRUE(autograd::grad(k).defined());
  EXPECT_EQ(autograd::grad(k).shape(), c.kshape());
}

// ----------------------------------------------------------------------------- errors

template <typename E>
void expect_message(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception, expected: " << needle;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception class: " << e.what();
  }
}

ConvParams params2d(int64_t k = 3) {
  ConvParams p;
  p.window = {k, k};
  p.stride = {1, 1};
  p.dilation = {1, 1};
  p.pad_before = {0, 0};
  p.pad_after = {0, 0};
  return p;
}

TEST(ConvErrors, ChannelMismatchNamesShapes) {
  Tensor x = Tensor::empty(Shape({2, 5, 5, 3}), DType::Float32), k = Tensor::empty(Shape({3, 3, 4, 8}));
  expect_message<ShapeError>([&] { ops::conv(x, k, Tensor(), params2d()); },
                             "conv: kernel (3, 3, 4, 8) expects 4 input channels, got input (2, 5, 5, 3)");
  ConvParams g = params2d();
  g.groups = 2;
  Tensor k2 = Tensor::empty(Shape({3, 3, 1, 8}));
  expect_message<ShapeError>([&] { ops::conv(x, k2, Tensor(), g); },
                             "conv: kernel (3, 3, 1, 8) with groups = 2 expects 2 input channels, got input (2, 5, 5, 3)");
  Tensor x4 = Tensor::empty(Shape({2, 5, 5, 4})), k3 = Tensor::empty(Shape({3, 3, 2, 7}));
  expect_message<ShapeError>([&] { ops::conv(x4, k3, Tensor(), g); },
                             "conv: kernel (3, 3, 2, 7) has 7 output channels, not divisible by groups = 2");
}

TEST(ConvErrors, RankWindowBiasAndEmptyOutput) {
  Tensor x = Tensor::empty(Shape({2, 5, 5, 3})), k = Tensor::empty(Shape({3, 3, 3, 8}));
  expect_message<ShapeError>([&] { ops::conv(Tensor::empty(Shape({5, 5, 3})), k, Tensor(), params2d()); },
                             "conv: expected input of rank 4 ([batch, 2 spatial axes, channels]), got input (5, 5, 3)");
  expect_message<ShapeError>([&] { ops::conv(x, k, Tensor(), params2d(2)); },
                             "conv: kernel (3, 3, 3, 8) does not match window (2, 2)");
  expect_message<ShapeError>([&] { ops::conv(x, k, Tensor::empty(Shape({4})), params2d()); },
                             "conv: bias (4,) does not match the 8 output channels");
  Tensor k7 = Tensor::empty(Shape({7, 7, 3, 8}));
  expect_message<ShapeError>([&] { ops::conv(x, k7, Tensor(), params2d(7)); },
                             "conv: input (2, 5, 5, 3) is too small for window (7, 7)");
}

TEST(ConvErrors, BadParamsAndDtypes) {
  Tensor x = Tensor::empty(Shape({2, 5, 5, 3})), k = Tensor::empty(Shape({3, 3, 3, 8}));
  ConvParams p = params2d();
  p.stride = {1, 0};
  expect_message<ValueError>([&] { ops::conv(x, k, Tensor(), p); }, "must be positive");
  p = params2d();
  p.pad_after = {1};
  expect_message<ValueError>([&] { ops::conv(x, k, Tensor(), p); }, "must have one entry per spatial axis");
  p = params2d();
  p.pad_before = {-1, 0};
  expect_message<ValueError>([&] { ops::conv(x, k, Tensor(), p); }, "padding must be non-negative");
  p = params2d();
  p.groups = 0;
  expect_message<ValueError>([&] { ops::conv(x, k, Tensor(), p); }, "conv: groups must be positive, got 0");
  Tensor xi = Tensor::empty(Shape({2, 5, 5, 3}), DType::Int32), ki = Tensor::empty(Shape({3, 3, 3, 8}), DType::Int32);
  expect_message<TypeError>([&] { ops::conv(xi, ki, Tensor(), params2d()); }, "conv");
  expect_message<ValueError>([&] { ops::conv(Tensor(), k, Tensor(), params2d()); }, "conv: input is undefined");
}

TEST(ConvErrors, TransposeShapes) {
  ConvParams p = params2d();
  Tensor x = Tensor::empty(Shape({2, 3, 3, 4})), k = Tensor::empty(Shape({3, 3, 2, 5}));
  expect_message<ShapeError>([&] { ops::conv_transpose(x, k, Tensor(), p, {5, 5}); },
                             "conv_transpose: kernel (3, 3, 2, 5) expects 5 input channels, got input (2, 3, 3, 4)");
  Tensor k4 = Tensor::empty(Shape({3, 3, 2, 4}));
  expect_message<ShapeError>([&] { ops::conv_transpose(x, k4, Tensor(), p, {6, 5}); },
                             "conv_transpose: output spatial extents (6, 5) give (4, 3) under the forward conv, but "
                             "the input is (2, 3, 3, 4)");
  expect_message<ValueError>([&] { ops::conv_transpose(x, k4, Tensor(), p, {5}); },
                             "conv_transpose: output spatial extents (5,) must have 2 entries");
  expect_message<ShapeError>([&] { ops::conv_transpose(x, k4, Tensor::empty(Shape({4})), p, {5, 5}); },
                             "conv_transpose: bias (4,) does not match the 2 output channels");
}

}  // namespace
