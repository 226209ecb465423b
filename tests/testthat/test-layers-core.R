# Core layers: dense, activation, dropout, flatten, reshape, permute, repeat_vector, identity,
# lambda. Values against base-R computations, Sequential and functional use, configs, errors,
# and the group-7 conformance fixtures.

set.seed(42)
xm <- matrix(round(rnorm(15), 3), nrow = 5)   # 5 samples, 3 features

test_that("layer_dense computes activation(x %*% kernel + bias) with Keras weight shapes", {
  layer <- layer_dense(units = 4, activation = "relu")
  expect_s3_class(layer, "keras.src.layers.core.dense.Dense")
  expect_s3_class(layer, "keras.src.layers.layer.Layer")
  out <- layer(xm)
  w <- get_weights(layer)
  expect_length(w, 2L)
  expect_equal(dim(w[[1L]]), c(3L, 4L))
  expect_equal(length(w[[2L]]), 4L)
  w[[2L]] <- c(0.1, -0.2, 0.3, 0)
  set_weights(layer, w)
  out <- layer(xm)
  expect_equal(dim(out), c(5L, 4L))
  expected <- pmax(xm %*% w[[1L]] + matrix(w[[2L]], 5, 4, byrow = TRUE), 0)
  expect_equal(as.array(out), expected, tolerance = 1e-5)
})

test_that("layer_dense without bias has only a kernel", {
  layer <- layer_dense(units = 2, use_bias = FALSE)
  out <- layer(xm)
  w <- get_weights(layer)
  expect_length(w, 1L)
  expect_equal(as.array(out), xm %*% w[[1L]], tolerance = 1e-5)
})

test_that("layer_dense in a Sequential model adds in place and builds with Keras shapes", {
  model <- keras_model_sequential(input_shape = 3)
  res <- model |> layer_dense(8, activation = "tanh") |> layer_dense(2)
  expect_identical(res, model)
  expect_length(model$layers, 2L)
  w <- get_weights(model)
  expect_equal(lapply(w, function(a) as.integer(dim(a) %||% length(a))),
               list(c(3L, 8L), 8L, c(8L, 2L), 2L))
  out <- as.array(model(xm))
  h <- tanh(xm %*% w[[1L]] + matrix(w[[2L]], 5, 8, byrow = TRUE))
  expect_equal(out, h %*% w[[3L]] + matrix(w[[4L]], 5, 2, byrow = TRUE), tolerance = 1e-5)
})

test_that("layer_dense in a functional model", {
  inp <- keras_input(shape = 3)
  out <- inp |> layer_dense(2, activation = "sigmoid")
  expect_s3_class(out, "rkeras_keras_tensor")
  expect_equal(dim(out), c(NA, 2L))
  model <- keras_model(inp, out)
  w <- get_weights(model)
  expected <- 1 / (1 + exp(-(xm %*% w[[1L]] + matrix(w[[2L]], 5, 2, byrow = TRUE))))
  expect_equal(as.array(model(xm)), expected, tolerance = 1e-5)
  expect_equal(predict(model, xm, verbose = 0), expected, tolerance = 1e-5)
})

test_that("layer_dense config has Keras's keys and converted values", {
  layer <- layer_dense(units = 3.0, activation = activation_relu, kernel_initializer = "zeros")
  cfg <- rk_state(layer)$config
  expect_true(all(c("units", "activation", "use_bias", "kernel_initializer", "bias_initializer",
                    "kernel_regularizer", "bias_regularizer", "activity_regularizer",
                    "kernel_constraint", "bias_constraint") %in% names(cfg)))
  expect_identical(cfg$units, 3L)
  expect_identical(cfg$activation, "relu")
  expect_false(identical(layer_dense(units = 1)$name, layer_dense(units = 1)$name))
  expect_identical(rk_state(layer_dense(units = 1))$config$activation, "linear")
  expect_length(get_weights(layer), 0L)  # unbuilt: no weights yet
})

test_that("layer_dense takes initializers, regularizers and constraints by name or object", {
  layer <- layer_dense(units = 2, kernel_initializer = "ones", bias_initializer = initializer_constant(0.5),
                       kernel_regularizer = regularizer_l2(0.01), kernel_constraint = "non_neg")
  layer(xm)
  w <- get_weights(layer)
  expect_equal(w[[1L]], matrix(1, 3, 2))
  expect_equal(as.vector(w[[2L]]), c(0.5, 0.5))
  cfg <- rk_state(layer)$config
  expect_identical(cfg$kernel_initializer, "ones")
  expect_identical(cfg$kernel_constraint, "non_neg")
})

test_that("layer_dense accepts R functions as activation", {
  layer <- layer_dense(units = 2, activation = function(x) x * 2 + 1)
  out <- layer(xm)
  w <- get_weights(layer)
  expect_equal(as.array(out), 2 * (xm %*% w[[1L]] + matrix(w[[2L]], 5, 2, byrow = TRUE)) + 1,
               tolerance = 1e-5)
})

test_that("layer_dense validates its arguments before creating anything", {
  model <- keras_model_sequential(input_shape = 3)
  expect_error(layer_dense(model, units = -3), "`units` must be a positive integer, got -3",
               class = "rkeras_value_error")
  expect_error(layer_dense(model, units = 2.5), "`units` must be a positive integer",
               class = "rkeras_value_error")
  expect_error(layer_dense(model, units = "a"), class = "rkeras_value_error")
  expect_error(layer_dense(model), "`units` is missing", class = "rkeras_value_error")
  expect_error(layer_dense(model, 2, use_bias = NA), "`use_bias`", class = "rkeras_type_error")
  expect_error(layer_dense(model, 2, activation = "bogus"), "unknown activation",
               class = "rkeras_value_error")
  expect_error(layer_dense(model, 2, lora_rank = 4), "LoRA", class = "rkeras_value_error")
  expect_error(layer_dense(model, 2, kernel_initializer = "glorotx"),
               "`kernel_initializer`: unknown initializer \"glorotx\"", class = "rkeras_value_error")
  expect_error(layer_dense(model, 2, bias_regularizer = "l3"), "`bias_regularizer`",
               class = "rkeras_value_error")
  expect_error(layer_dense(model, 2, activity_regularizer = "l3"), "`activity_regularizer`",
               class = "rkeras_value_error")
  expect_error(layer_dense(model, 2, kernel_constraint = "foo"), "`kernel_constraint`",
               class = "rkeras_value_error")
  expect_error(layer_dense(model, 2, kernel_initializer = 3), "`kernel_initializer`",
               class = "rkeras_error")
  expect_length(model$layers, 0L)
})

test_that("layer_activation applies strings, activation functions and R functions", {
  m <- matrix(c(-2, -0.5, 0, 1.5, 3, -1), nrow = 2)
  expect_equal(as.array(layer_activation(activation = "relu")(m)), pmax(m, 0))
  expect_equal(as.array(layer_activation(activation = activation_tanh)(m)), tanh(m), tolerance = 1e-6)
  expect_equal(as.array(layer_activation(activation = function(x) x^2)(m)), m^2, tolerance = 1e-6)
  expect_error(layer_activation(), "`activation` is missing", class = "rkeras_value_error")
  expect_error(layer_activation(activation = NULL), class = "rkeras_value_error")
  expect_s3_class(layer_activation(activation = "relu"),
                  "keras.src.layers.activations.activation.Activation")
})

test_that("layer_dropout is the identity outside training and drops with rescaling in training", {
  big <- matrix(1, nrow = 200, ncol = 50)
  layer <- layer_dropout(rate = 0.4)
  expect_equal(as.array(layer(big)), big)
  set.seed(1)
  out <- as.array(layer(big, training = TRUE))
  expect_true(all(out == 0 | abs(out - 1 / 0.6) < 1e-5))
  expect_equal(mean(out == 0), 0.4, tolerance = 0.05)
  set.seed(1)
  out2 <- as.array(layer(big, training = TRUE))
  expect_identical(out, out2)
})

test_that("layer_dropout noise_shape shares the mask along axes of size 1", {
  big <- array(1, c(30, 4, 6))
  layer <- layer_dropout(rate = 0.5, noise_shape = c(NA, 1, 6))
  set.seed(3)
  out <- as.array(layer(big, training = TRUE))
  for (i in 1:30) for (k in 1:6) expect_length(unique(out[i, , k]), 1L)
  expect_identical(rk_state(layer)$config$noise_shape, c(NA, 1L, 6L))
})

test_that("layer_dropout validates rate, noise_shape and seed", {
  expect_error(layer_dropout(rate = 1.5), "`rate` must be a single finite number in \\[0, 1\\]",
               class = "rkeras_value_error")
  expect_error(layer_dropout(rate = -0.1), class = "rkeras_value_error")
  expect_error(layer_dropout(), "`rate` is missing", class = "rkeras_value_error")
  expect_error(layer_dropout(rate = 0.5, seed = -1), "`seed`", class = "rkeras_value_error")
  expect_error(layer_dropout(rate = 0.5, noise_shape = c(1.5, 2)), "`noise_shape`",
               class = "rkeras_value_error")
  expect_identical(rk_state(layer_dropout(rate = 0.5, seed = 3))$config$seed, 3L)
})

test_that("layer_flatten flattens each sample in row-major order", {
  a <- array(seq_len(2 * 3 * 4), c(2, 3, 4))
  out <- as.array(layer_flatten()(a))
  expect_equal(dim(out), c(2L, 12L))
  expect_equal(out, array_reshape(a, c(2, 12)))
  model <- keras_model_sequential(input_shape = c(3, 4)) |> layer_flatten()
  expect_equal(model$output_shape, c(NA, 12L))
  expect_error(layer_flatten(data_format = "nchw"), "`data_format`", class = "rkeras_value_error")
})

test_that("layer_reshape reshapes row-major, with one inferred entry", {
  a <- matrix(as.numeric(1:24), nrow = 2)
  out <- as.array(layer_reshape(target_shape = c(3, 4))(a))
  expect_equal(out, array_reshape(a, c(2, 3, 4)))
  out2 <- as.array(layer_reshape(target_shape = c(NA, 2))(a))
  expect_equal(out2, array_reshape(a, c(2, 6, 2)))
  expect_identical(rk_state(layer_reshape(target_shape = c(-1, 2)))$config$target_shape, c(-1L, 2L))
  expect_error(layer_reshape(target_shape = c(NA, NA)), "at most one unknown", class = "rkeras_value_error")
  expect_error(layer_reshape(target_shape = c(0.5, 2)), class = "rkeras_value_error")
  expect_error(layer_reshape(), "`target_shape` is missing", class = "rkeras_value_error")
})

test_that("layer_permute permutes the non-batch axes", {
  a <- array(as.numeric(1:24), c(2, 3, 4))
  out <- as.array(layer_permute(dims = c(2, 1))(a))
  expect_equal(out, aperm(a, c(1, 3, 2)))
  expect_error(layer_permute(dims = c(1, 3)), "permutation of 1:2", class = "rkeras_value_error")
  expect_error(layer_permute(dims = c(1, 1)), class = "rkeras_value_error")
})

test_that("layer_repeat_vector repeats each sample n times", {
  out <- as.array(layer_repeat_vector(n = 3)(xm))
  expect_equal(dim(out), c(5L, 3L, 3L))
  for (j in 1:3) expect_equal(out[, j, ], xm, tolerance = 1e-6)
  expect_error(layer_repeat_vector(n = 0), "`n` must be a positive integer, got 0",
               class = "rkeras_value_error")
})

test_that("layer_identity returns its input", {
  expect_equal(as.array(layer_identity()(xm)), xm, tolerance = 1e-6)
  inp <- keras_input(shape = 3)
  out <- layer_identity(inp)
  expect_equal(dim(out), c(NA, 3L))
})

test_that("layer_lambda runs an R function, with arguments and output_shape", {
  expect_equal(as.array(layer_lambda(f = function(x) x * 2 + 1)(xm)), xm * 2 + 1, tolerance = 1e-6)
  scale <- layer_lambda(f = function(x, k) x * k, arguments = list(k = 3))
  expect_equal(as.array(scale(xm)), xm * 3, tolerance = 1e-6)
  inp <- keras_input(shape = 3)
  out <- inp |> layer_dense(4) |> layer_lambda(function(x) activation_softmax(x), output_shape = 4)
  expect_equal(dim(out), c(NA, 4L))
  model <- keras_model(inp, out)
  p <- predict(model, xm, verbose = 0)
  expect_equal(rowSums(p), rep(1, 5), tolerance = 1e-5)
  expect_error(layer_lambda(f = 3), "`f` must be a function", class = "rkeras_type_error")
  expect_error(layer_lambda(), "`f` is missing", class = "rkeras_value_error")
  expect_error(layer_lambda(f = identity, arguments = list(1)), "`arguments`", class = "rkeras_type_error")
})

test_that("layer_lambda inside a Sequential model", {
  model <- keras_model_sequential(input_shape = 3) |>
    layer_lambda(function(x) x * 10) |>
    layer_dense(1, use_bias = FALSE, kernel_initializer = "ones")
  expect_equal(as.array(model(xm)), matrix(rowSums(xm) * 10), tolerance = 1e-4)
})

test_that("generic layer arguments pass through and unknown ones are refused", {
  layer <- layer_dense(units = 2, name = "my_dense", trainable = FALSE)
  expect_identical(layer$name, "my_dense")
  expect_false(layer$trainable)
  model <- keras_model_sequential() |> layer_dense(2, input_shape = 3)
  expect_length(get_weights(model), 2L)
  expect_error(layer_dense(units = 2, foo = 1), "Unrecognized keyword arguments", class = "rkeras_value_error")
})

# ---- conformance: group 7 ---------------------------------------------------------------

build_sequential_case <- function(case) {
  x <- fixture_array(case$inputs[[1L]])
  model <- keras_model_sequential(input_shape = dim(x)[-1L])
  for (l in case$layers) {
    cfg <- l$config
    switch(l$class_name,
      Dense = layer_dense(model, units = cfg$units, activation = cfg$activation,
                          use_bias = cfg$use_bias, name = cfg$name),
      Dropout = layer_dropout(model, rate = cfg$rate, name = cfg$name),
      Flatten = layer_flatten(model, name = cfg$name),
      RepeatVector = layer_repeat_vector(model, n = cfg$n, name = cfg$name),
      Reshape = layer_reshape(model, target_shape = unlist(cfg$target_shape), name = cfg$name),
      Permute = layer_permute(model, dims = unlist(cfg$dims), name = cfg$name),
      stop("no builder for ", l$class_name)
    )
  }
  if (length(case$weights)) {
    w <- fixture_weights(case)
    paths <- vapply(model$weights, function(v) v$path, "")
    expect_setequal(paths, names(w))
    set_weights(model, unname(w[paths]))
  }
  list(model = model, x = x, expected = fixture_array(case$outputs[[1L]]))
}

for (id in c("07_dense_dropout_dense", "07_dropout", "07_flatten", "07_repeatvector", "07_reshape")) {
  local({
    case_id <- id
    test_that(paste("conformance", case_id), {
      case <- conformance_case(case_id)
      b <- build_sequential_case(case)
      expect_fixture_equal(b$model(b$x), b$expected, case$tolerance)
      expect_fixture_equal(predict(b$model, b$x, verbose = 0), b$expected, case$tolerance)
    })
  })
}

test_that("every core layer works in Sequential and functional models with the right shapes", {
  cases <- list(
    list(make = function(o) layer_dense(o, 5), input = c(2, 3), out = c(2, 5)),
    list(make = function(o) layer_activation(o, "softplus"), input = c(2, 3), out = c(2, 3)),
    list(make = function(o) layer_dropout(o, 0.3), input = c(2, 3), out = c(2, 3)),
    list(make = function(o) layer_flatten(o), input = c(2, 3), out = 6),
    list(make = function(o) layer_reshape(o, c(3, 2)), input = c(2, 3), out = c(3, 2)),
    list(make = function(o) layer_permute(o, c(2, 1)), input = c(2, 3), out = c(3, 2)),
    list(make = function(o) layer_repeat_vector(o, 4), input = 3, out = c(4, 3)),
    list(make = function(o) layer_identity(o), input = c(2, 3), out = c(2, 3)),
    list(make = function(o) layer_lambda(o, function(x) x + 1), input = c(2, 3), out = c(2, 3))
  )
  for (cs in cases) {
    seq_model <- keras_model_sequential(input_shape = cs$input)
    cs$make(seq_model)
    expect_equal(seq_model$output_shape, c(NA, cs$out))
    inp <- keras_input(shape = cs$input)
    out <- cs$make(inp)
    expect_equal(dim(out), c(NA, cs$out))
    fmodel <- keras_model(inp, out)
    xin <- array(runif(4 * prod(cs$input)), c(4, cs$input))
    expect_equal(dim(predict(fmodel, xin, verbose = 0)), c(4L, cs$out))
    expect_equal(dim(predict(seq_model, xin, verbose = 0)), c(4L, cs$out))
  }
})

test_that("R-function activations and Lambda layers pass gradients during fit()", {
  set.seed(5)
  x <- matrix(rnorm(64 * 4), 64)
  y <- matrix(rowSums(x), 64)
  model <- keras_model_sequential(input_shape = 4) |>
    layer_dense(3, activation = function(z) z * activation_sigmoid(z)) |>
    layer_lambda(function(z) z * 2) |>
    layer_dense(1)
  compile(model, optimizer = "sgd", loss = "mse")
  w0 <- get_weights(model)[[1L]]
  fit(model, x, y, epochs = 2, verbose = 0)
  expect_gt(max(abs(get_weights(model)[[1L]] - w0)), 1e-4)
})
