# Noise and regularisation layers: gaussian_noise, gaussian_dropout, alpha_dropout,
# activity_regularization. Identity outside training, noise statistics in training,
# reproducibility under set.seed(), configs and errors.

ones <- matrix(1, nrow = 400, ncol = 50)

test_that("layer_gaussian_noise adds N(0, stddev^2) noise only in training", {
  layer <- layer_gaussian_noise(stddev = 0.5)
  expect_equal(as.array(layer(ones)), ones)
  set.seed(11)
  out <- as.array(layer(ones, training = TRUE))
  noise <- out - 1
  expect_equal(mean(noise), 0, tolerance = 0.02)
  expect_equal(sd(as.vector(noise)), 0.5, tolerance = 0.02)
  set.seed(11)
  expect_identical(as.array(layer(ones, training = TRUE)), out)
  expect_identical(rk_state(layer_gaussian_noise(stddev = 0.1, seed = 5))$config,
                   list(stddev = 0.1, seed = 5L))
  expect_error(layer_gaussian_noise(stddev = -1), "`stddev`", class = "rkeras_value_error")
  expect_error(layer_gaussian_noise(), "`stddev` is missing", class = "rkeras_value_error")
  expect_error(layer_gaussian_noise(stddev = 0.1, seed = "a"), "`seed`", class = "rkeras_value_error")
})

test_that("layer_gaussian_dropout multiplies by N(1, rate / (1 - rate)) noise only in training", {
  layer <- layer_gaussian_dropout(rate = 0.2)
  expect_equal(as.array(layer(ones)), ones)
  set.seed(12)
  out <- as.array(layer(ones, training = TRUE))
  expect_equal(mean(out), 1, tolerance = 0.02)
  expect_equal(sd(as.vector(out)), sqrt(0.2 / 0.8), tolerance = 0.02)
  expect_error(layer_gaussian_dropout(rate = 2), "`rate`", class = "rkeras_value_error")
  expect_error(layer_gaussian_dropout(), "`rate` is missing", class = "rkeras_value_error")
})

test_that("layer_alpha_dropout keeps mean and variance of SELU-distributed inputs", {
  set.seed(13)
  x <- matrix(rnorm(400 * 50), nrow = 400)
  layer <- layer_alpha_dropout(rate = 0.2)
  expect_equal(as.array(layer(x)), x, tolerance = 1e-6)
  out <- as.array(layer(x, training = TRUE))
  expect_false(isTRUE(all.equal(out, x)))
  expect_equal(mean(out), mean(x), tolerance = 0.05)
  expect_equal(sd(as.vector(out)), sd(as.vector(x)), tolerance = 0.05)
  # dropped units all take one value: a * (-alpha * scale) + b
  alpha_p <- -1.6732632423543772 * 1.0507009873554805
  a <- ((1 - 0.2) * (1 + 0.2 * alpha_p^2))^-0.5
  b <- -a * alpha_p * 0.2
  dropped <- abs(out - (a * alpha_p + b)) < 1e-5
  expect_equal(mean(dropped), 0.2, tolerance = 0.05)
  expect_equal(out[!dropped], a * x[!dropped] + b, tolerance = 1e-5)
  expect_identical(rk_state(layer_alpha_dropout(rate = 0.1, noise_shape = c(NA, 50), seed = 2))$config,
                   list(rate = 0.1, noise_shape = c(NA, 50L), seed = 2L))
  expect_error(layer_alpha_dropout(rate = 1), "`rate`", class = "rkeras_value_error")
})

test_that("layer_activity_regularization passes its input through", {
  m <- matrix(c(-1, 2, 3, -4), nrow = 2)
  layer <- layer_activity_regularization(l1 = 0.01, l2 = 0.1)
  expect_equal(as.array(layer(m)), m)
  expect_equal(as.array(layer(m, training = TRUE)), m)
  expect_identical(rk_state(layer)$config, list(l1 = 0.01, l2 = 0.1))
  expect_error(layer_activity_regularization(l1 = -1), "`l1`", class = "rkeras_value_error")
  expect_error(layer_activity_regularization(l2 = "x"), "`l2`", class = "rkeras_value_error")
})

test_that("noise layers fit in Sequential and functional models and are inactive in predict", {
  model <- keras_model_sequential(input_shape = 5) |>
    layer_gaussian_noise(0.3) |>
    layer_gaussian_dropout(0.3) |>
    layer_alpha_dropout(0.3) |>
    layer_activity_regularization(l2 = 0.1) |>
    layer_dense(2, use_bias = FALSE)
  x <- matrix(runif(20), nrow = 4)
  w <- get_weights(model)
  expect_equal(predict(model, x, verbose = 0), x %*% w[[1L]], tolerance = 1e-5)
  inp <- keras_input(shape = 5)
  out <- inp |> layer_gaussian_noise(0.1) |> layer_dense(1)
  fmodel <- keras_model(inp, out)
  expect_equal(dim(predict(fmodel, x, verbose = 0)), c(4L, 1L))
})
