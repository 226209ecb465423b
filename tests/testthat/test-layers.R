# The layer machinery: create_layer() compose rules, naming, building, `$` access.

test_that("create_layer() returns a layer instance with keras3 classes", {
  l <- create_layer("Dense", NULL, list(units = 3L, activation = "linear", use_bias = TRUE))
  expect_true(is.function(l))
  expect_equal(class(l), c("keras.src.layers.core.dense.Dense", "keras.src.layers.layer.Layer",
                           "rkeras_layer", "function"))
  expect_false(l$built)
  expect_match(format(l), "^<Dense name=dense(_[0-9]+)?, built=False>$")
  expect_equal(rk_state(l)$class_name, "Dense")
  lr <- create_layer("LeakyReLU", NULL, list(negative_slope = 0.3),
                     module = "keras.src.layers.activations.leaky_relu")
  expect_equal(class(lr)[1], "keras.src.layers.activations.leaky_relu.LeakyReLU")
})

test_that("auto names follow Keras's snake case and per-prefix counters, left to right", {
  expect_equal(rk_snake_case("Dense"), "dense")
  expect_equal(rk_snake_case("LeakyReLU"), "leaky_re_lu")
  expect_equal(rk_snake_case("PReLU"), "p_re_lu")
  expect_equal(rk_snake_case("Conv2D"), "conv2d")
  expect_equal(rk_snake_case("BatchNormalization"), "batch_normalization")
  p <- paste0("zz_prefix_", sample.int(1e6, 1))
  expect_equal(rk_unique_name(p), p)
  expect_equal(rk_unique_name(p), paste0(p, "_1"))
  expect_equal(rk_unique_name(p), paste0(p, "_2"))
  model <- keras_model_sequential(input_shape = 2)
  model |> layer_dense(2) |> layer_dense(2)
  nms <- vapply(model$layers, function(l) l$name, "")
  n1 <- as.integer(sub("^dense_?", "", nms[1]))
  n2 <- as.integer(sub("^dense_?", "", nms[2]))
  expect_equal(if (is.na(n1)) 1L else n1 + 1L, n2)
})

test_that("unknown keyword arguments are a classed error", {
  expect_error(create_layer("Dense", NULL, list(units = 2L), foo = 1),
               class = "rkeras_value_error", regexp = "Unrecognized keyword arguments passed to Dense: \\{'foo': 1\\}")
  expect_error(create_layer("Dense", NULL, list(units = 2L), name = 3), class = "rkeras_type_error")
})

test_that("generic kwargs: name, trainable, dtype, input_shape", {
  l <- layer_dense(units = 2, name = "my_dense", trainable = FALSE, input_shape = c(5))
  st <- rk_state(l)
  expect_equal(l$name, "my_dense")
  expect_false(l$trainable)
  expect_equal(st$dtype, "float32")
  expect_identical(st$batch_input_shape, c(NA_integer_, 5L))
  l2 <- layer_dense(units = 2, batch_input_shape = list(NULL, 7))
  expect_identical(rk_state(l2)$batch_input_shape, c(NA_integer_, 7L))
  l3 <- layer_dense(units = 2, input_shape = 4, batch_size = 16)
  expect_identical(rk_state(l3)$batch_input_shape, c(16L, 4L))
})

test_that("a layer on a Sequential model adds itself and returns the model invisibly", {
  model <- keras_model_sequential(input_shape = 3)
  expect_invisible(out <- layer_dense(model, 4))
  expect_identical(out, model)
  model |> layer_dense(2)   # no reassignment: modified in place
  expect_length(model$layers, 2)
  l <- layer_dense(units = 5)
  expect_invisible(l(model))
  expect_length(model$layers, 3)
  expect_identical(model$layers[[3]], l)
})

test_that("symbolic calls return KerasTensors with inferred shapes and record nodes", {
  x <- keras_input(shape = c(6))
  d <- layer_dense(units = 4)
  y <- d(x)
  expect_s3_class(y, "keras.src.backend.common.keras_tensor.KerasTensor")
  expect_identical(y$shape, c(NA_integer_, 4L))
  expect_identical(dim(y), c(NA_integer_, 4L))
  expect_equal(y$dtype, "float32")
  expect_true(d$built)
  expect_equal(lapply(d$weights, dim), list(c(6L, 4L), 4L))
  expect_identical(d$output, y)
  expect_identical(d$input, x)
  expect_identical(d$output_shape, c(NA_integer_, 4L))
  expect_match(format(y), "^<KerasTensor shape=\\(None, 4\\), dtype=float32, sparse=False, name=keras_tensor")
  # pipe form
  z <- x |> layer_dense(3)
  expect_identical(z$shape, c(NA_integer_, 3L))
})

test_that("eager calls build the layer and return an rkeras_tensor", {
  d <- layer_dense(units = 2, kernel_initializer = "ones", bias_initializer = "zeros")
  x <- matrix(c(1, 2, 3, 4, 5, 6), nrow = 2)   # 2 x 3
  y <- d(x)
  expect_s3_class(y, "rkeras_tensor")
  expect_equal(rk_tensor_dtype(y), "float32")
  expect_equal(as.array(y), cbind(rowSums(x), rowSums(x)), tolerance = 1e-6)
  expect_equal(dim(d$weights[[1]]), c(3L, 2L))
  # the same layer on another feature count is a shape error naming the layer
  expect_error(d(matrix(1, 2, 5)), class = "rkeras_shape_error", regexp = d$name)
  # and it is unchanged
  expect_equal(dim(d$weights[[1]]), c(3L, 2L))
})

test_that("eager training flag reaches the engine (dropout)", {
  set.seed(1)
  drop <- layer_dropout(rate = 0.5)
  x <- matrix(1, 4, 10)
  expect_equal(as.array(drop(x)), x)
  y <- as.array(drop(x, training = TRUE))
  expect_true(all(y %in% c(0, 2)))
  expect_true(any(y == 0))
})

test_that("merge layers take a list or several inputs", {
  a <- keras_input(shape = 3)
  b <- keras_input(shape = 3)
  s <- layer_add(list(a, b))
  expect_identical(s$shape, c(NA_integer_, 3L))
  m <- layer_concatenate(list(a, b))
  expect_identical(m$shape, c(NA_integer_, 6L))
  # eager
  r <- layer_add(list(matrix(1, 2, 3), matrix(2, 2, 3)))
  expect_equal(as.array(r), matrix(3, 2, 3))
  # through create_layer's unnamed extra inputs
  r2 <- create_layer("Add", matrix(1, 2, 3), list(), matrix(5, 2, 3), module = "merging")
  expect_equal(as.array(r2), matrix(6, 2, 3))
})

test_that("mixing symbolic and concrete inputs is an error", {
  a <- keras_input(shape = 3)
  expect_error(layer_add(list(a, matrix(1, 2, 3))), class = "rkeras_type_error")
})

test_that("layers given as inputs are an error like Keras's", {
  expect_error(layer_dense(layer_dense(units = 2), 3), class = "rkeras_type_error",
               regexp = "Inputs to a layer should be tensors")
})

test_that("an R function as activation runs as an extra engine step", {
  d <- layer_dense(units = 2, activation = function(x) x * 0 + 7)
  y <- d(matrix(1, 3, 4))
  expect_equal(as.array(y), matrix(7, 3, 2))
  x <- keras_input(shape = 4)
  out <- d(x)
  expect_identical(out$shape, c(NA_integer_, 2L))
  m <- keras_model(x, out)
  expect_equal(as.array(m(matrix(2, 2, 4))), matrix(7, 2, 2))
})

test_that("r_fn layers (layer_lambda machinery) infer shapes and run in graphs", {
  l <- create_layer("Lambda", NULL, list(), r_fn = function(x) rk_sum(x, axis = 2, keepdims = TRUE) * 2)
  st <- rk_state(l)
  expect_identical(rk_external_out_shapes(st, list(c(NA_integer_, 5L))), list(c(NA_integer_, 1L)))
  expect_equal(as.array(l(matrix(1, 3, 5))), matrix(10, 3, 1))
  l2 <- create_layer("Lambda", NULL, list(), r_fn = function(x) x + 1, r_output_shape = 5)
  x <- keras_input(shape = 5)
  y <- l2(x)
  expect_identical(y$shape, c(NA_integer_, 5L))
  model <- keras_model(x, y)
  expect_equal(as.array(model(matrix(0, 2, 5))), matrix(1, 2, 5))
})

test_that("weights follow initializers, regularizers and constraints keys", {
  d <- layer_dense(units = 3, kernel_initializer = "ones", bias_initializer = "ones",
                   kernel_regularizer = "l2")
  d(matrix(0, 1, 2))
  w <- get_weights(d)
  expect_equal(w[[1]], matrix(1, 2, 3))
  expect_equal(as.vector(w[[2]]), c(1, 1, 1))
  expect_equal(d$weights[[1]]$path, paste0(d$name, "/kernel"))
  expect_false(is.null(d$weights[[1]]$regularizer))
})

test_that("engine attrs drop initializers, regularizers, constraints, NULLs and functions", {
  a <- rk_engine_attrs(list(units = 3L, activation = "relu", kernel_initializer = "ones",
                            kernel_regularizer = NULL, bias_constraint = "non_neg", foo = NULL,
                            f = function(x) x, strides = list(1L, 2L), dims = list(NULL, 3)))
  expect_equal(a, list(units = 3L, activation = "relu", strides = c(1, 2), dims = c(NA, 3)))
})

test_that("$<- sets trainable (variables follow) and other attributes", {
  d <- layer_dense(units = 2)
  d(matrix(0, 1, 3))
  d$trainable <- FALSE
  expect_false(d$trainable)
  expect_length(d$trainable_weights, 0)
  expect_length(d$non_trainable_weights, 2)
  expect_false(d$weights[[1]]$trainable)
  d$trainable <- TRUE
  expect_length(d$trainable_weights, 2)
  expect_error(d$weights <- list(), class = "rkeras_value_error")
  d$custom_field <- 42
  expect_equal(d$custom_field, 42)
  expect_error(d$trainable <- NA, class = "rkeras_type_error")
})

test_that("rk_state() refuses non-layers", {
  expect_error(rk_state(1), class = "rkeras_type_error")
})

test_that("layer$output on an uncalled layer is a classed error", {
  expect_error(layer_dense(units = 2)$output, class = "rkeras_value_error", regexp = "never been called")
})
