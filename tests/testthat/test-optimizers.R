# Optimizer objects: keras3 signatures, defaults, class names, $learning_rate, string
# identifiers, errors; and the engine update they configure against base-R formulas.

test_that("constructors have keras3 defaults and class names", {
  o <- optimizer_adam()
  expect_s3_class(o, "keras.src.optimizers.adam.Adam")
  expect_s3_class(o, "keras.src.optimizers.optimizer.Optimizer")
  expect_equal(o$learning_rate, 0.001)
  expect_equal(o$name, "adam")
  cfg <- o$get_config()
  expect_equal(cfg$beta_1, 0.9)
  expect_equal(cfg$beta_2, 0.999)
  expect_equal(cfg$epsilon, 1e-7)
  expect_false(cfg$amsgrad)
  expect_null(cfg$clipnorm)

  expect_s3_class(optimizer_sgd(), "keras.src.optimizers.sgd.SGD")
  expect_equal(optimizer_sgd()$learning_rate, 0.01)
  expect_equal(optimizer_sgd()$name, "SGD")
  expect_s3_class(optimizer_rmsprop(), "keras.src.optimizers.rmsprop.RMSprop")
  expect_equal(optimizer_rmsprop()$get_config()$rho, 0.9)
  expect_s3_class(optimizer_adam_w(), "keras.src.optimizers.adamw.AdamW")
  expect_equal(optimizer_adam_w()$get_config()$weight_decay, 0.004)
  expect_s3_class(optimizer_adagrad(), "keras.src.optimizers.adagrad.Adagrad")
  expect_equal(optimizer_adagrad()$get_config()$initial_accumulator_value, 0.1)
  expect_equal(names(formals(optimizer_adam))[1:5], c("learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"))
  expect_output(print(optimizer_sgd(momentum = 0.9)), "SGD")
})

test_that("strings resolve to default optimizers; unknown strings are classed errors", {
  expect_s3_class(rkeras:::rk_get_optimizer("adam"), "keras.src.optimizers.adam.Adam")
  expect_s3_class(rkeras:::rk_get_optimizer("Adam"), "keras.src.optimizers.adam.Adam")
  expect_s3_class(rkeras:::rk_get_optimizer("sgd"), "keras.src.optimizers.sgd.SGD")
  expect_s3_class(rkeras:::rk_get_optimizer("rmsprop"), "keras.src.optimizers.rmsprop.RMSprop")
  expect_s3_class(rkeras:::rk_get_optimizer("adamw"), "keras.src.optimizers.adamw.AdamW")
  expect_s3_class(rkeras:::rk_get_optimizer("adagrad"), "keras.src.optimizers.adagrad.Adagrad")
  o <- optimizer_sgd()
  expect_identical(rkeras:::rk_get_optimizer(o), o)
  expect_error(rkeras:::rk_get_optimizer("adamx"), class = "rkeras_value_error",
               regexp = "Could not interpret optimizer identifier: \"adamx\".*\"sgd\", \"adam\"")
  expect_error(rkeras:::rk_get_optimizer(3), class = "rkeras_type_error")
})

test_that("bad arguments are classed errors", {
  expect_error(optimizer_adam(lr = 0.1), class = "rkeras_value_error", regexp = "learning_rate")
  expect_error(optimizer_adam(learning_rate = -1), class = "rkeras_value_error")
  expect_error(optimizer_adam(learning_rate = "a"), class = "rkeras_type_error")
  expect_error(optimizer_sgd(clipnorm = 1, global_clipnorm = 1), class = "rkeras_value_error",
               regexp = "Only one of `clipnorm` and `global_clipnorm`")
  expect_error(optimizer_sgd(nesterov = NA), class = "rkeras_type_error")
  expect_error(optimizer_sgd(use_ema = TRUE), class = "rkeras_unsupported_error")
  expect_error(optimizer_sgd(foo = 1), class = "rkeras_value_error", regexp = "foo")
})

test_that("$learning_rate can be read and set, before and after the engine exists", {
  o <- optimizer_adam(learning_rate = 0.01)
  o$learning_rate <- 0.005
  expect_equal(o$learning_rate, 0.005)
  expect_equal(o$iterations, 0L)
  eng <- rkeras:::rk_optimizer_engine(o)
  expect_equal(rkeras:::rk_optimizer_get(eng)$learning_rate, 0.005)
  o$learning_rate <- 0.1
  expect_equal(rkeras:::rk_optimizer_get(eng)$learning_rate, 0.1)
  expect_equal(o$learning_rate, 0.1)
  expect_identical(rkeras:::rk_optimizer_engine(o), eng)  # created once
  expect_error(o$learning_rate <- -1, class = "rkeras_value_error")
  expect_error(o$beta_1 <- 0.5, class = "rkeras_value_error")
})

test_that("rk_optimizer_spec() gives the engine kind and attrs (NA = off)", {
  s <- rkeras:::rk_optimizer_spec(optimizer_sgd(0.1, momentum = 0.9, nesterov = TRUE, clipvalue = 0.5))
  expect_equal(s$kind, "sgd")
  expect_equal(s$attrs$learning_rate, 0.1)
  expect_equal(s$attrs$momentum, 0.9)
  expect_true(s$attrs$nesterov)
  expect_equal(s$attrs$clipvalue, 0.5)
  expect_true(is.na(s$attrs$clipnorm))
  expect_true(is.na(s$attrs$weight_decay))
  expect_equal(rkeras:::rk_optimizer_spec(optimizer_adam_w())$kind, "adamw")
})

# Two engine steps of `opt` on w with fixed gradients, against `ref(w, g, t, state)`.
opt_steps <- function(opt, w0, grads) {
  eng <- rkeras:::rk_optimizer_engine(opt)
  w <- rk_tensor(w0, dtype = "float32")
  for (g in grads) rkeras:::rk_optimizer_apply(eng, list(w), list(rk_tensor(g, dtype = "float32")))
  as.numeric(as.array(w))
}

test_that("the configured engine optimizers follow Keras 3's update rules", {
  w0 <- c(0.5, -1, 2)
  g1 <- c(0.1, -0.2, 0.3)
  g2 <- c(-0.3, 0.1, 0.2)

  # SGD with Nesterov momentum
  lr <- 0.1; mom <- 0.9
  m <- 0; w <- w0
  for (g in list(g1, g2)) { m <- mom * m - lr * g; w <- w + mom * m - lr * g }
  expect_equal(opt_steps(optimizer_sgd(lr, momentum = mom, nesterov = TRUE), w0, list(g1, g2)), w,
               tolerance = 1e-6)

  # Adam
  lr <- 0.01; b1 <- 0.9; b2 <- 0.999; eps <- 1e-7
  m <- 0; v <- 0; w <- w0
  for (t in 1:2) {
    g <- list(g1, g2)[[t]]
    m <- m + (g - m) * (1 - b1); v <- v + (g^2 - v) * (1 - b2)
    w <- w - lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
  }
  expect_equal(opt_steps(optimizer_adam(lr), w0, list(g1, g2)), w, tolerance = 1e-6)

  # RMSprop (plain)
  lr <- 0.01; rho <- 0.9
  v <- 0; w <- w0
  for (g in list(g1, g2)) { v <- rho * v + (1 - rho) * g^2; w <- w - lr * g / sqrt(v + eps) }
  expect_equal(opt_steps(optimizer_rmsprop(lr), w0, list(g1, g2)), w, tolerance = 1e-6)

  # Adagrad
  lr <- 0.1
  acc <- 0.1; w <- w0
  for (g in list(g1, g2)) { acc <- acc + g^2; w <- w - lr * g / sqrt(acc + eps) }
  expect_equal(opt_steps(optimizer_adagrad(lr), w0, list(g1, g2)), w, tolerance = 1e-6)

  # clipvalue and decoupled weight decay on plain SGD
  lr <- 0.1; wd <- 0.01
  w <- w0
  for (g in list(g1, g2)) { w <- w - w * wd * lr; w <- w - lr * pmin(pmax(g, -0.15), 0.15) }
  expect_equal(opt_steps(optimizer_sgd(lr, clipvalue = 0.15, weight_decay = wd), w0, list(g1, g2)), w,
               tolerance = 1e-6)
})
