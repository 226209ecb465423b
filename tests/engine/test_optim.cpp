// Optimizers against Keras 3's update formulas written out here (3 steps on fixed gradients),
// the common tail (clipping, weight decay, iterations), error paths, and weight constraints.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "nn/attrs.h"
#include "optim/optimizer.h"
#include "test_util.h"

using namespace rk;
using rk::testing::expect_values;
using rk::testing::make;
using rk::testing::values;

namespace {

using Vec = std::vector<double>;

nn::Attrs attrs(std::initializer_list<std::pair<const char*, double>> kv) {
  nn::Attrs a;
  for (auto& [k, v] : kv) a.set(k, std::vector<double>{v});
  return a;
}

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
  EXPECT_THROW(optim::make_optimizer("adamax", nn::Attrs()), ValueError);
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
