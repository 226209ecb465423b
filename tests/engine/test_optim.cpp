// Optimizers against Keras 3's update formulas written out here (3 steps on fixed gradients),
// the common tail (clipping, weight decay, iterations), error paths, and weight constraints.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "nn/attrs.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "test_util.h"

using namespace rk;
using rk::testing::attrs, rk::testing::expect_values, rk::testing::make, rk::testing::values;

namespace {

using Vec = std::vector<double>;

// Gradient of step t (1-based): varies so that amsgrad and momentum matter.
Vec grad_at(int t) {
  const Vec base = {0.1, -0.2, 0.3, -0.05};
  const double f = t == 1 ? 1.0 : (t == 2 ? 0.1 : -2.0);
  Vec g(base.size());
  for (size_t i = 0; i < g.size(); ++i) g[i] = base[i] * f;
  return g;
}

const Vec kW0 = {0.5, -1.0, 2.0, 0.0};

// Runs `steps` optimizer steps from kW0 and compares with `ref`, which advances its own state by one step.
void check_rule(const std::string& kind, const nn::Attrs& a, int steps,
                const std::function<void(Vec& w, const Vec& g, int t)>& ref, DType dt = DType::Float64,
                double tol = 1e-12) {
  auto opt = optim::make_optimizer(kind, a);
  std::vector<Tensor> params = {make(Shape({2, 2}), kW0, dt)};
  Vec w = kW0;
  for (int t = 1; t <= steps; ++t) {
    Vec g = grad_at(t);
    opt->step(params, {make(Shape({2, 2}), g, dt)});
    ref(w, g, t);
    SCOPED_TRACE(kind + " step " + std::to_string(t));
    expect_values(params[0], w, tol, dt == DType::Float32 ? 1e-6 : tol);
  }
  EXPECT_EQ(opt->iterations(), steps);
}

}  // namespace

TEST(Optim, SGDPlain) {
  check_rule("sgd", attrs({{"learning_rate", 0.1}}), 3, [](Vec& w, const Vec& g, int) {
    for (size_t i = 0; i < w.size(); ++i) w[i] -= 0.1 * g[i];
  });
}

TEST(Optim, SGDDefaultLearningRate) {
  auto opt = optim::make_optimizer("sgd", nn::Attrs());
  EXPECT_DOUBLE_EQ(opt->learning_rate(), 0.01);
  EXPECT_DOUBLE_EQ(optim::make_optimizer("adam", nn::Attrs())->learning_rate(), 0.001);
  EXPECT_DOUBLE_EQ(optim::make_optimizer("rmsprop", nn::Attrs())->learning_rate(), 0.001);
}

TEST(Optim, SGDMomentum) {
  Vec m(4, 0.0);
  check_rule("sgd", attrs({{"learning_rate", 0.1}, {"momentum", 0.9}}), 3, [&](Vec& w, const Vec& g, int) {
    for (size_t i = 0; i < w.size(); ++i) {
      m[i] = 0.9 * m[i] - 0.1 * g[i];  // velocity
      w[i] += m[i];
    }
  });
}

TEST(Optim, SGDNesterov) {
  Vec m(4, 0.0);
  nn::Attrs a = attrs({{"learning_rate", 0.1}, {"momentum", 0.9}, {"nesterov", 1}});
  check_rule("sgd", a, 3, [&](Vec& w, const Vec& g, int) {
    for (size_t i = 0; i < w.size(); ++i) {
      m[i] = 0.9 * m[i] - 0.1 * g[i];
      w[i] += 0.9 * m[i] - 0.1 * g[i];
    }
  });
}

TEST(Optim, Adam) {
  Vec m(4, 0.0), v(4, 0.0);
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-7;
  check_rule("adam", attrs({{"learning_rate", lr}}), 3, [&](Vec& w, const Vec& g, int t) {
    const double alpha = lr * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
    for (size_t i = 0; i < w.size(); ++i) {
      m[i] += (g[i] - m[i]) * (1 - b1);
      v[i] += (g[i] * g[i] - v[i]) * (1 - b2);
      w[i] -= m[i] * alpha / (std::sqrt(v[i]) + eps);
    }
  });
}

TEST(Optim, AdamAmsgradAndSlots) {
  Vec m(4, 0.0), v(4, 0.0), vh(4, 0.0);
  const double lr = 0.01, b1 = 0.8, b2 = 0.9, eps = 1e-3;
  nn::Attrs a = attrs({{"learning_rate", lr}, {"beta_1", b1}, {"beta_2", b2}, {"epsilon", eps}, {"amsgrad", 1}});
  check_rule("adam", a, 3, [&](Vec& w, const Vec& g, int t) {
    const double alpha = lr * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
    for (size_t i = 0; i < w.size(); ++i) {
      m[i] += (g[i] - m[i]) * (1 - b1);
      v[i] += (g[i] * g[i] - v[i]) * (1 - b2);
      vh[i] = std::max(vh[i], v[i]);
      w[i] -= m[i] * alpha / (std::sqrt(vh[i]) + eps);
    }
  });
  // Slot layout m, v, vhat (Keras's order).
  auto opt = optim::make_optimizer("adam", a);
  std::vector<Tensor> p = {make(Shape({2, 2}), kW0)};
  EXPECT_TRUE(opt->slots(0).empty());
  opt->step(p, {make(Shape({2, 2}), grad_at(1))});
  ASSERT_EQ(opt->slots(0).size(), 3u);
  expect_values(opt->slots(0)[0], {0.02, -0.04, 0.06, -0.01}, 1e-12);
  expect_values(opt->slots(0)[1], {0.001, 0.004, 0.009, 0.00025}, 1e-12);
  opt->reset();
  EXPECT_EQ(opt->iterations(), 0);
  EXPECT_TRUE(opt->slots(0).empty());
}

TEST(Optim, AdamWDefaultDecay) {
  Vec m(4, 0.0), v(4, 0.0);
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-7, wd = 0.004;
  check_rule("adamw", attrs({{"learning_rate", lr}}), 3, [&](Vec& w, const Vec& g, int t) {
    const double alpha = lr * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
    for (size_t i = 0; i < w.size(); ++i) {
      w[i] -= w[i] * wd * lr;  // decoupled decay before the rule
      m[i] += (g[i] - m[i]) * (1 - b1);
      v[i] += (g[i] * g[i] - v[i]) * (1 - b2);
      w[i] -= m[i] * alpha / (std::sqrt(v[i]) + eps);
    }
  });
}

TEST(Optim, RMSpropPlainEpsilonInsideSqrt) {
  Vec vel(4, 0.0);
  const double lr = 0.01, rho = 0.9, eps = 1e-2;  // a large eps makes its placement visible
  check_rule("rmsprop", attrs({{"learning_rate", lr}, {"epsilon", eps}}), 3, [&](Vec& w, const Vec& g, int) {
    for (size_t i = 0; i < w.size(); ++i) {
      vel[i] = rho * vel[i] + (1 - rho) * g[i] * g[i];
      w[i] -= lr * g[i] / std::sqrt(vel[i] + eps);
    }
  });
}

TEST(Optim, RMSpropMomentumCentered) {
  Vec vel(4, 0.0), mom(4, 0.0), avg(4, 0.0);
  const double lr = 0.01, rho = 0.8, eps = 1e-7, mu = 0.5;
  nn::Attrs a = attrs({{"learning_rate", lr}, {"rho", rho}, {"momentum", mu}, {"centered", 1}});
  check_rule("rmsprop", a, 3, [&](Vec& w, const Vec& g, int) {
    for (size_t i = 0; i < w.size(); ++i) {
      vel[i] = rho * vel[i] + (1 - rho) * g[i] * g[i];
      avg[i] = rho * avg[i] + (1 - rho) * g[i];
      const double inc = lr * g[i] / std::sqrt(vel[i] - avg[i] * avg[i] + eps);
      mom[i] = mu * mom[i] + inc;
      w[i] -= mom[i];
    }
  });
  auto opt = optim::make_optimizer("rmsprop", a);
  std::vector<Tensor> p = {make(Shape({2, 2}), kW0)};
  opt->step(p, {make(Shape({2, 2}), grad_at(1))});
  EXPECT_EQ(opt->slots(0).size(), 3u);  // velocity, momentum, average_gradient
}

TEST(Optim, Adagrad) {
  Vec acc(4, 0.1);  // initial_accumulator_value
  const double lr = 0.05, eps = 1e-7;
  check_rule("adagrad", attrs({{"learning_rate", lr}}), 3, [&](Vec& w, const Vec& g, int) {
    for (size_t i = 0; i < w.size(); ++i) {
      acc[i] += g[i] * g[i];
      w[i] -= lr * g[i] / std::sqrt(acc[i] + eps);
    }
  });
}

TEST(Optim, ClipNormPerVariable) {
  // Norm of grad_at(1) = sqrt(0.01+0.04+0.09+0.0025) = 0.3775; step 3 norm = 0.755.
  const double c = 0.3;
  check_rule("sgd", attrs({{"learning_rate", 0.1}, {"clipnorm", c}}), 3, [&](Vec& w, const Vec& g, int) {
    double n = 0;
    for (double x : g) n += x * x;
    n = std::sqrt(n);
    for (size_t i = 0; i < w.size(); ++i) w[i] -= 0.1 * g[i] * c / std::max(n, c);
  });
}

TEST(Optim, ClipValue) {
  check_rule("sgd", attrs({{"learning_rate", 0.1}, {"clipvalue", 0.15}}), 3, [&](Vec& w, const Vec& g, int) {
    for (size_t i = 0; i < w.size(); ++i) w[i] -= 0.1 * std::clamp(g[i], -0.15, 0.15);
  });
}

TEST(Optim, GlobalClipNorm) {
  // Two variables; the global norm covers both.
  auto opt = optim::make_optimizer("sgd", attrs({{"learning_rate", 1.0}, {"global_clipnorm", 1.0}}));
  std::vector<Tensor> p = {make(Shape({2}), {0, 0}), make(Shape({1}), {0})};
  opt->step(p, {make(Shape({2}), {3, 0}), make(Shape({1}), {4})});  // norm 5 -> scale 0.2
  expect_values(p[0], {-0.6, 0}, 1e-12);
  expect_values(p[1], {-0.8}, 1e-12);
  opt->step(p, {make(Shape({2}), {0.3, 0}), make(Shape({1}), {0.4})});  // norm 0.5: unchanged
  expect_values(p[0], {-0.9, 0}, 1e-12);
  expect_values(p[1], {-1.2}, 1e-12);
}

TEST(Optim, WeightDecayAllOptimizers) {
  const double wd = 0.1, lr = 0.1;
  check_rule("sgd", attrs({{"learning_rate", lr}, {"weight_decay", wd}}), 3, [&](Vec& w, const Vec& g, int) {
    for (size_t i = 0; i < w.size(); ++i) w[i] = w[i] - w[i] * wd * lr - lr * g[i];
  });
  Vec acc(4, 0.1);
  check_rule("adagrad", attrs({{"learning_rate", lr}, {"weight_decay", wd}}), 3, [&](Vec& w, const Vec& g, int) {
    for (size_t i = 0; i < w.size(); ++i) {
      w[i] -= w[i] * wd * lr;
      acc[i] += g[i] * g[i];
      w[i] -= lr * g[i] / std::sqrt(acc[i] + 1e-7);
    }
  });
}

TEST(Optim, Float32AndLargeTensorsMatchFormula) {
  check_rule(
      "adam", attrs({{"learning_rate", 0.01}}), 3,
      [&, m = Vec(4, 0.0), v = Vec(4, 0.0)](Vec& w, const Vec& g, int t) mutable {
        const double alpha = 0.01 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
        for (size_t i = 0; i < w.size(); ++i) {
          m[i] += (g[i] - m[i]) * 0.1;
          v[i] += (g[i] * g[i] - v[i]) * 0.001;
          w[i] -= m[i] * alpha / (std::sqrt(v[i]) + 1e-7);
        }
      },
      DType::Float32, 1e-6);
  // Above the OpenMP threshold: every element follows the same formula.
  const int64_t n = 100003;
  std::vector<double> w0 = rk::testing::seq(n, -1, 1, 3), g0 = rk::testing::seq(n, -1, 1, 4);
  auto opt = optim::make_optimizer("rmsprop", attrs({{"learning_rate", 0.01}, {"momentum", 0.9}}));
  std::vector<Tensor> p = {make(Shape({n}), w0, DType::Float32)};
  opt->step(p, {make(Shape({n}), g0, DType::Float32)});
  Vec expect(static_cast<size_t>(n));
  for (size_t i = 0; i < expect.size(); ++i) {
    double vel = 0.1 * g0[i] * g0[i];
    expect[i] = static_cast<float>(w0[i]) - 0.01 * g0[i] / std::sqrt(vel + 1e-7);
  }
  expect_values(p[0], expect, 1e-5, 1e-4);
}

TEST(Optim, UndefinedGradientSkipsVariable) {
  auto opt = optim::make_optimizer("sgd", attrs({{"learning_rate", 0.1}}));
  std::vector<Tensor> p = {make(Shape({2}), {1, 2}), make(Shape({1}), {3})};
  opt->step(p, {Tensor(), make(Shape({1}), {1})});
  expect_values(p[0], {1, 2});
  expect_values(p[1], {2.9});
}

TEST(Optim, ErrorsLeaveWeightsUnchanged) {
  EXPECT_THROW(optim::make_optimizer("adamx", nn::Attrs()), ValueError);
  EXPECT_THROW(optim::make_optimizer("sgd", attrs({{"clipnorm", 1}, {"clipvalue", 1}})), ValueError);
  EXPECT_THROW(optim::make_optimizer("sgd", attrs({{"momentum", 1.5}})), ValueError);
  EXPECT_THROW(optim::make_optimizer("adam", attrs({{"learning_rate", -1}})), ValueError);
  // NA (None) clip settings count as unset.
  EXPECT_NO_THROW(optim::make_optimizer("sgd", attrs({{"clipnorm", std::nan("")}, {"clipvalue", 1}})));
  try {
    optim::make_optimizer("sgd", attrs({{"clipnorm", 1}, {"global_clipnorm", 2}}));
    FAIL();
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("Only one of `clipnorm`, `clipvalue` and `global_clipnorm`"),
              std::string::npos);
  }
  auto opt = optim::make_optimizer("adam", nn::Attrs());
  std::vector<Tensor> p = {make(Shape({2}), {1, 2}), make(Shape({3}), {1, 2, 3})};
  // The second gradient has the wrong shape: nothing may change, not even the first variable.
  EXPECT_THROW(opt->step(p, {make(Shape({2}), {1, 1}), make(Shape({2}), {1, 1})}), ShapeError);
  expect_values(p[0], {1, 2});
  EXPECT_EQ(opt->iterations(), 0);
  EXPECT_TRUE(opt->slots(0).empty());
  EXPECT_THROW(opt->step(p, {make(Shape({2}), {1, 1})}), ShapeError);
  opt->step(p, {make(Shape({2}), {1, 1}), make(Shape({3}), {1, 1, 1})});
  // A different set of variables afterwards is refused.
  std::vector<Tensor> one = {p[0]};
  EXPECT_THROW(opt->step(one, {make(Shape({2}), {1, 1})}), ValueError);
}

TEST(Optim, LearningRateAndIterations) {
  auto opt = optim::make_optimizer("sgd", attrs({{"learning_rate", 0.5}}));
  std::vector<Tensor> p = {make(Shape({1}), {1})};
  opt->step(p, {make(Shape({1}), {1})});
  opt->set_learning_rate(0.25);
  opt->step(p, {make(Shape({1}), {1})});
  expect_values(p[0], {0.25});
  EXPECT_EQ(opt->iterations(), 2);
  EXPECT_EQ(opt->kind(), "sgd");
}

TEST(Optim, Adadelta) {
  const double lr = 1.0, rho = 0.95, eps = 1e-7;
  check_rule("adadelta", attrs({{"learning_rate", lr}}), 3,
             [&, ag = Vec(4, 0.0), adv = Vec(4, 0.0)](Vec& w, const Vec& g, int) mutable {
               for (size_t i = 0; i < w.size(); ++i) {
                 ag[i] = rho * ag[i] + (1 - rho) * g[i] * g[i];
                 const double d = -std::sqrt(adv[i] + eps) * g[i] / std::sqrt(ag[i] + eps);
                 adv[i] = rho * adv[i] + (1 - rho) * d * d;
                 w[i] += lr * d;
               }
             });
}

TEST(Optim, AdamaxNadamLion) {
  check_rule("adamax", attrs({{"learning_rate", 0.01}}), 3,
             [m = Vec(4, 0.0), u = Vec(4, 0.0)](Vec& w, const Vec& g, int t) mutable {
               for (size_t i = 0; i < w.size(); ++i) {
                 m[i] += (g[i] - m[i]) * 0.1;
                 u[i] = std::max(0.999 * u[i], std::abs(g[i]));
                 w[i] -= 0.01 * m[i] / ((1 - std::pow(0.9, t)) * (u[i] + 1e-7));
               }
             });
  check_rule("nadam", attrs({{"learning_rate", 0.01}}), 3,
             [m = Vec(4, 0.0), v = Vec(4, 0.0), up = 1.0](Vec& w, const Vec& g, int t) mutable {
               const double ut = 0.9 * (1 - 0.5 * std::pow(0.96, t)), ut1 = 0.9 * (1 - 0.5 * std::pow(0.96, t + 1));
               up *= ut;
               const double up1 = up * ut1;
               for (size_t i = 0; i < w.size(); ++i) {
                 m[i] += (g[i] - m[i]) * 0.1;
                 v[i] += (g[i] * g[i] - v[i]) * 0.001;
                 const double mh = ut1 * m[i] / (1 - up1) + (1 - ut) * g[i] / (1 - up);
                 const double vh = v[i] / (1 - std::pow(0.999, t));
                 w[i] -= 0.01 * mh / (std::sqrt(vh) + 1e-7);
               }
             });
  check_rule("lion", attrs({{"learning_rate", 0.01}}), 3, [m = Vec(4, 0.0)](Vec& w, const Vec& g, int) mutable {
    for (size_t i = 0; i < w.size(); ++i) {
      const double s = 0.9 * m[i] + 0.1 * g[i];
      w[i] -= 0.01 * ((s > 0) - (s < 0));
      m[i] = 0.99 * m[i] + 0.01 * g[i];
    }
  });
}

TEST(Optim, FtrlWithPenaltiesAndDecay) {
  const double lr = 0.1, l1 = 0.01, l2 = 0.1, l2s = 0.05, beta = 0.2, wd = 0.1;
  check_rule("ftrl",
             attrs({{"learning_rate", lr}, {"l1_regularization_strength", l1}, {"l2_regularization_strength", l2},
                    {"l2_shrinkage_regularization_strength", l2s}, {"beta", beta}, {"weight_decay", wd}}),
             3, [&, acc = Vec(4, 0.1), lin = Vec(4, 0.0)](Vec& w, const Vec& g, int) mutable {
               for (size_t i = 0; i < w.size(); ++i) {
                 w[i] -= w[i] * wd * lr;
                 const double na = acc[i] + g[i] * g[i];
                 lin[i] += g[i] + 2 * l2s * w[i] - (std::sqrt(na) - std::sqrt(acc[i])) / lr * w[i];
                 const double quad = std::sqrt(na) / lr + 2 * (l2 + beta / (2 * lr));
                 w[i] = (std::clamp(lin[i], -l1, l1) - lin[i]) / quad;
                 acc[i] = na;
               }
             });
}

TEST(Optim, LambTrustRatio) {
  check_rule("lamb", attrs({{"learning_rate", 0.01}}), 3,
             [m = Vec(4, 0.0), v = Vec(4, 0.0)](Vec& w, const Vec& g, int t) mutable {
               Vec r(4);
               double wn = 0, rn = 0;
               for (size_t i = 0; i < w.size(); ++i) {
                 m[i] += (g[i] - m[i]) * 0.1;
                 v[i] += (g[i] * g[i] - v[i]) * 0.001;
                 r[i] = (m[i] / (1 - std::pow(0.9, t))) / (std::sqrt(v[i] / (1 - std::pow(0.999, t))) + 1e-7);
                 wn += w[i] * w[i];
                 rn += r[i] * r[i];
               }
               const double ratio = std::sqrt(wn) / std::sqrt(rn);
               for (size_t i = 0; i < w.size(); ++i) w[i] -= ratio * 0.01 * r[i];
             });
}

TEST(Optim, AdafactorFactoredSecondMoment) {
  // w is 2x2: r (rows) and c (columns) factor v.
  check_rule("adafactor", attrs({{"learning_rate", 0.01}}), 3,
             [r = Vec(2, 0.0), c = Vec(2, 0.0)](Vec& w, const Vec& g, int t) mutable {
               auto rms = [](const Vec& x) {
                 double s = 0;
                 for (double e : x) s += e * e;
                 return std::sqrt(s / static_cast<double>(x.size()));
               };
               const double rho = std::min(0.01, 1 / std::sqrt(t)), alpha = std::max(1e-3, rms(w)) * rho;
               const double b2t = 1 - std::pow(t, -0.8);
               Vec g2(4);
               for (size_t i = 0; i < 4; ++i) g2[i] = g[i] * g[i] + 1e-30;
               for (int i = 0; i < 2; ++i) r[i] = b2t * r[i] + (1 - b2t) * (g2[2 * i] + g2[2 * i + 1]) / 2;
               for (int j = 0; j < 2; ++j) c[j] = b2t * c[j] + (1 - b2t) * (g2[j] + g2[2 + j]) / 2;
               const double rmean = (r[0] + r[1]) / 2;
               Vec u(4);
               for (int i = 0; i < 2; ++i)
                 for (int j = 0; j < 2; ++j) u[2 * i + j] = g[2 * i + j] / std::sqrt(r[i] / rmean * c[j]);
               const double shrink = std::max(1.0, rms(u) / 1.0);
               for (size_t i = 0; i < 4; ++i) w[i] -= alpha * u[i] / shrink;
             });
  auto opt = optim::make_optimizer("adafactor", nn::Attrs());
  std::vector<Tensor> p = {make(Shape({2, 3}), {1, 2, 3, 4, 5, 6}), make(Shape({3}), {1, 2, 3})};
  opt->step(p, {make(Shape({2, 3}), {1, 1, 1, 1, 1, 1}), make(Shape({3}), {1, 1, 1})});
  EXPECT_EQ(opt->slots(0)[0].shape(), Shape({2}));
  EXPECT_EQ(opt->slots(0)[1].shape(), Shape({3}));
  EXPECT_EQ(opt->slots(0)[2].shape(), Shape({2, 3}));
  EXPECT_EQ(opt->slots(1)[0].rank(), 0);
}

TEST(Optim, NewRulesFloat32MatchFloat64) {
  for (const char* kind : {"adadelta", "adamax", "nadam", "ftrl", "lion", "lamb", "adafactor"}) {
    auto o64 = optim::make_optimizer(kind, attrs({{"learning_rate", 0.05}}));
    auto o32 = optim::make_optimizer(kind, attrs({{"learning_rate", 0.05}}));
    std::vector<Tensor> p64 = {make(Shape({2, 2}), kW0)}, p32 = {make(Shape({2, 2}), kW0, DType::Float32)};
    for (int t = 1; t <= 3; ++t) {
      o64->step(p64, {make(Shape({2, 2}), grad_at(t))});
      o32->step(p32, {make(Shape({2, 2}), grad_at(t), DType::Float32)});
    }
    SCOPED_TRACE(kind);
    expect_values(p32[0], values(p64[0]), 1e-5, 1e-4);
  }
}

TEST(OptimTail, LossScaleDividesGradients) {
  auto opt = optim::make_optimizer("sgd", attrs({{"learning_rate", 0.1}, {"loss_scale_factor", 4}}));
  EXPECT_DOUBLE_EQ(opt->loss_scale_factor(), 4);
  std::vector<Tensor> p = {make(Shape({2}), {1, 2})};
  opt->step(p, {make(Shape({2}), {4, -8})});
  expect_values(p[0], {0.9, 2.2});
  EXPECT_THROW(optim::make_optimizer("sgd", attrs({{"loss_scale_factor", 0}})), ValueError);
}

TEST(OptimTail, GradientAccumulationAppliesTheMeanEveryNSteps) {
  // Adam with N = 2: calls 1 and 3 only accumulate; calls 2 and 4 apply mean gradients as updates 1 and 2.
  auto opt = optim::make_optimizer("adam", attrs({{"learning_rate", 0.1}, {"gradient_accumulation_steps", 2}}));
  std::vector<Tensor> p = {make(Shape({1}), {1})};
  const Vec gs = {1, 3, -2, 0};
  double w = 1, m = 0, v = 0;
  for (int call = 1; call <= 4; ++call) {
    opt->step(p, {make(Shape({1}), {gs[call - 1]})});
    if (call % 2 == 0) {
      const int t = call / 2;
      const double g = (gs[call - 2] + gs[call - 1]) / 2;
      m += (g - m) * 0.1;
      v += (g * g - v) * 0.001;
      w -= 0.1 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t)) * m / (std::sqrt(v) + 1e-7);
    }
    expect_values(p[0], {w}, 1e-12);
    EXPECT_EQ(opt->iterations(), call / 2);
    EXPECT_EQ(opt->raw_iterations(), call);
  }
  expect_values(opt->accumulator(0), {0});
  EXPECT_THROW(optim::make_optimizer("sgd", attrs({{"gradient_accumulation_steps", 1}})), ValueError);
  EXPECT_THROW(optim::make_optimizer("sgd", attrs({{"gradient_accumulation_steps", 2.5}})), ValueError);
}

TEST(OptimTail, EmaAverageOverwriteAndFinalize) {
  auto opt = optim::make_optimizer(
      "sgd", attrs({{"learning_rate", 0.1}, {"use_ema", 1}, {"ema_momentum", 0.9}, {"ema_overwrite_frequency", 2}}));
  std::vector<Tensor> p = {make(Shape({1}), {1})};
  double w = 1, avg = 0;
  for (int t = 1; t <= 3; ++t) {
    opt->step(p, {make(Shape({1}), {static_cast<double>(t)})});
    w -= 0.1 * t;
    avg = t == 1 ? w : 0.9 * avg + 0.1 * w;
    if (t % 2 == 0) w = avg;  // overwritten every 2 updates
    expect_values(p[0], {w}, 1e-12);
    expect_values(opt->ema(0), {avg}, 1e-12);
  }
  opt->finalize(p);
  expect_values(p[0], {avg}, 1e-12);
  EXPECT_THROW(optim::make_optimizer("sgd", attrs({{"use_ema", 1}, {"ema_momentum", 1.5}})), ValueError);
}

TEST(OptimTail, ScheduleEvaluatedAtEachStep) {
  auto opt = optim::make_optimizer("sgd", attrs({{"learning_rate", 0.5}}));
  opt->set_learning_rate_fn([](int64_t s) { return 0.1 / static_cast<double>(s + 1); });
  std::vector<Tensor> p = {make(Shape({1}), {0})};
  for (int s = 0; s < 3; ++s) {
    EXPECT_DOUBLE_EQ(opt->learning_rate(), 0.1 / (s + 1));
    opt->step(p, {make(Shape({1}), {1})});
  }
  expect_values(p[0], {-(0.1 + 0.05 + 0.1 / 3)}, 1e-12);
  EXPECT_THROW(opt->set_learning_rate(0.1), TypeError);
  // A schedule giving NaN fails before anything changes.
  opt->set_learning_rate_fn([](int64_t) { return std::nan(""); });
  EXPECT_THROW(opt->step(p, {make(Shape({1}), {1})}), ValueError);
  EXPECT_EQ(opt->raw_iterations(), 3);
}

TEST(Schedules, BuiltinFormulas) {
  auto sched = [](const char* kind, std::initializer_list<std::pair<const char*, double>> kv) {
    return optim::LearningRateSchedule(kind, attrs(kv));
  };
  auto ed = sched("exponential_decay", {{"initial_learning_rate", 0.1}, {"decay_steps", 10}, {"decay_rate", 0.5},
                                        {"staircase", 1}});
  EXPECT_DOUBLE_EQ(ed(15), 0.05);
  auto cd = sched("cosine_decay", {{"initial_learning_rate", 0.0}, {"decay_steps", 10}, {"warmup_target", 0.2},
                                   {"warmup_steps", 4}, {"alpha", 0.1}});
  EXPECT_DOUBLE_EQ(cd(1), 0.05);
  EXPECT_NEAR(cd(9), 0.2 * (0.9 * 0.5 * (1 + std::cos(M_PI * 0.5)) + 0.1), 1e-15);
  EXPECT_NEAR(cd(100), 0.2 * 0.1, 1e-15);
  auto cr = sched("cosine_decay_restarts", {{"initial_learning_rate", 1.0}, {"first_decay_steps", 10}});
  // t_mul = 2: periods [0, 10), [10, 30); step 20 is halfway through the second.
  EXPECT_NEAR(cr(20), 0.5, 1e-12);
  nn::Attrs pa;
  pa.set("boundaries", Vec{10, 20});
  pa.set("values", Vec{1, 0.5, 0.1});
  optim::LearningRateSchedule pc("piecewise_constant_decay", pa);
  EXPECT_EQ(pc(10), 1);
  EXPECT_EQ(pc(11), 0.5);
  EXPECT_EQ(pc(21), 0.1);
  EXPECT_THROW(sched("exponential_decay", {{"initial_learning_rate", 0.1}, {"decay_steps", 0}, {"decay_rate", 1}}),
               ValueError);
  EXPECT_THROW(sched("linear", {}), ValueError);
}

// ---------------------------------------------------------------------------------- constraints

TEST(Constraints, MaxNormAxis0) {
  // Columns of a [2, 2] kernel (axis 0 = over the input dimension): norms 5 and 0.5.
  Tensor w = make(Shape({2, 2}), {3, 0.3, 4, 0.4});
  optim::Constraint c{"max_norm", attrs({{"max_value", 2}})};
  optim::apply_constraint(c, w);
  const double e = 1e-7;
  expect_values(w, {3 * 2 / (e + 5), 0.3 * 0.5 / (e + 0.5), 4 * 2 / (e + 5), 0.4 * 0.5 / (e + 0.5)}, 1e-12);
}

TEST(Constraints, MinMaxNormRateAndAxis) {
  Tensor w = make(Shape({2, 2}), {3, 4, 0.3, 0.4});  // rows have norms 5 and 0.5
  nn::Attrs a = attrs({{"min_value", 1}, {"max_value", 2}, {"rate", 0.5}});
  a.set("axis", std::vector<double>{1});
  optim::apply_constraint({"min_max_norm", a}, w);
  const double e = 1e-7;
  const double d1 = 0.5 * 2 + 0.5 * 5, d2 = 0.5 * 1 + 0.5 * 0.5;
  expect_values(w, {3 * d1 / (e + 5), 4 * d1 / (e + 5), 0.3 * d2 / (e + 0.5), 0.4 * d2 / (e + 0.5)}, 1e-12);
}

TEST(Constraints, NonNegAndUnitNorm) {
  Tensor w = make(Shape({3}), {-1, 0, 2});
  optim::apply_constraint({"non_neg", nn::Attrs()}, w);
  expect_values(w, {0, 0, 2});
  Tensor u = make(Shape({2, 2}), {3, 1, 4, 0}, DType::Float32);
  optim::apply_constraint({"unit_norm", nn::Attrs()}, u);
  expect_values(u, {3 / (5 + 1e-7), 1 / (1 + 1e-7), 4 / (5 + 1e-7), 0}, 1e-6);
  // Several axes at once (the whole tensor for a rank-2 weight).
  Tensor v = make(Shape({2, 2}), {1, 1, 1, 1});
  nn::Attrs a;
  a.set("axis", std::vector<double>{0, 1});
  optim::apply_constraint({"unit_norm", a}, v);
  expect_values(v, {0.5, 0.5, 0.5, 0.5}, 1e-6);
}

TEST(Constraints, Errors) {
  Tensor w = make(Shape({2}), {1, 2});
  EXPECT_THROW(optim::apply_constraint({"max_norm_x", nn::Attrs()}, w), ValueError);
  nn::Attrs a;
  a.set("axis", std::vector<double>{3});
  EXPECT_THROW(optim::apply_constraint({"max_norm", a}, w), IndexError);
  expect_values(w, {1, 2});
  optim::apply_constraint({"", nn::Attrs()}, w);  // none
  expect_values(w, {1, 2});
}
