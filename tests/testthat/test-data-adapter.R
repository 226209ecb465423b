# Data going into fit()/evaluate()/predict(): conversions (data.frame, factor, logical,
# named lists), validation_split, class_weight, and every bad-input case: a classed error
# naming expected vs given, raised before any work, with the weights unchanged.

da_model <- function(inputs = 4, units = 3, activation = "softmax") {
  keras_model_sequential(input_shape = inputs) |> layer_dense(units, activation = activation)
}

da_expect_unchanged <- function(model, expr, class, regexp) {
  w <- get_weights(model)
  it <- model$optimizer$iterations
  expect_error(expr, class = class, regexp = regexp)
  expect_identical(get_weights(model), w)
  expect_identical(model$optimizer$iterations, it)
}

test_that("bad data: classed errors naming expected and given, model unchanged", {
  set.seed(1)
  x <- matrix(rnorm(20 * 4), ncol = 4)
  y <- sample(0:2, 20, replace = TRUE)
  m <- da_model()
  m |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  fit(m, x, y, verbose = 0)  # the optimizer exists, so iterations are comparable

  da_expect_unchanged(m, fit(m, x[, 1:3], y, verbose = 0), "rkeras_shape_error",
                      "`x` has 3 columns but the model expects 4")
  da_expect_unchanged(m, fit(m, array(1, c(20, 2, 2)), y, verbose = 0), "rkeras_shape_error",
                      "shape \\(20, 2, 2\\) but the model expects \\(None, 4\\)")
  da_expect_unchanged(m, fit(m, x, y[-1], verbose = 0), "rkeras_shape_error",
                      "`x` has 20 samples but `y` has 19")
  da_expect_unchanged(m, fit(m, x, replace(y, 5, 3L), verbose = 0), "rkeras_value_error",
                      "class label 3 but the model output has 3 classes.*\\[0, 2\\]")
  da_expect_unchanged(m, fit(m, x, replace(y, 2, -1L), verbose = 0), "rkeras_value_error", "class label -1")
  da_expect_unchanged(m, fit(m, x, replace(y, 2, 0.5), verbose = 0), "rkeras_value_error", "whole-number")
  da_expect_unchanged(m, fit(m, x, to_categorical(y, 3), verbose = 0), "rkeras_shape_error",
                      "sparse_categorical_crossentropy expects integer class labels.*one-hot")
  xna <- x; xna[7, 2] <- NA
  da_expect_unchanged(m, fit(m, xna, y, verbose = 0), "rkeras_value_error", "`x` contains 1 NA value \\(first in row 7\\)")
  xinf <- x; xinf[3, 1] <- Inf; xinf[4, 1] <- NaN
  da_expect_unchanged(m, fit(m, xinf, y, verbose = 0), "rkeras_value_error", "contains 2 NaN/Inf values \\(first in row 3\\)")
  da_expect_unchanged(m, fit(m, x, replace(y, 9, NA), verbose = 0), "rkeras_value_error", "`y` contains")
  df <- as.data.frame(x)
  df$V2 <- factor(letters[1:20])
  da_expect_unchanged(m, fit(m, df, y, verbose = 0), "rkeras_type_error",
                      "non-numeric column \"V2\" \\(factor\\)")
  da_expect_unchanged(m, fit(m, x, y, validation_split = 1, verbose = 0), "rkeras_value_error",
                      "`validation_split` must be a number in \\[0, 1\\)")
  da_expect_unchanged(m, fit(m, x, y, validation_split = -0.1, verbose = 0), "rkeras_value_error", "validation_split")
  da_expect_unchanged(m, fit(m, x, y, sample_weight = rep(1, 5), verbose = 0), "rkeras_shape_error",
                      "`sample_weight` has 5 values but there are 20 samples")
  da_expect_unchanged(m, fit(m, x, y, batch_size = 0, verbose = 0), "rkeras_value_error", "batch_size")
  da_expect_unchanged(m, fit(m, list(x, x), y, verbose = 0), "rkeras_value_error", "list of 2 arrays but the model has 1 input")
  da_expect_unchanged(m, fit(m, "a", y, verbose = 0), "rkeras_type_error", "must be a numeric")
  da_expect_unchanged(m, evaluate(m, x[, 1:3], y, verbose = 0), "rkeras_shape_error", "3 columns")
  expect_error(predict(m, x[, 1:3], verbose = 0), class = "rkeras_shape_error", regexp = "3 columns but the model expects 4")

  mc <- da_model()
  mc |> compile(optimizer = "sgd", loss = "categorical_crossentropy")
  expect_error(fit(mc, x, y, verbose = 0), class = "rkeras_shape_error",
               regexp = "`y` has shape \\(20,\\).*to_categorical\\(y, 3\\)")
  mr <- da_model(units = 2, activation = NULL)
  mr |> compile(optimizer = "sgd", loss = "mse")
  expect_error(fit(mr, x, cbind(y, y, y), verbose = 0), class = "rkeras_shape_error",
               regexp = "`y` has shape \\(20, 3\\) but the model output has shape \\(None, 2\\)")
})

test_that("data.frames, factors, logicals and integer arrays are accepted", {
  set.seed(4)
  x <- matrix(rnorm(30 * 4), ncol = 4)
  y <- sample(0:2, 30, replace = TRUE)
  m <- da_model()
  m |> compile(optimizer = "sgd", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  ref <- evaluate(m, x, y, verbose = 0)
  df <- as.data.frame(x)
  df$V4 <- as.integer(df$V4 > 0)
  x2 <- x; x2[, 4] <- as.integer(x[, 4] > 0)
  expect_equal(evaluate(m, df, y, verbose = 0), evaluate(m, x2, y, verbose = 0))
  yf <- factor(c("a", "b", "c")[y + 1L])
  expect_equal(evaluate(m, x, yf, verbose = 0), ref)
  expect_equal(evaluate(m, x, cbind(y), verbose = 0), ref)
  expect_equal(evaluate(m, x, as.numeric(y), verbose = 0), ref)
  expect_equal(predict(m, df, verbose = 0), predict(m, x2, verbose = 0))

  mb <- da_model(units = 1, activation = "sigmoid")
  mb |> compile(optimizer = "sgd", loss = "binary_crossentropy")
  yl <- x[, 1] > 0
  expect_equal(evaluate(mb, x, yl, verbose = 0), evaluate(mb, x, cbind(as.numeric(yl)), verbose = 0))
})

test_that("helpers: rows, finite check, class weights, splits", {
  a <- array(1:24, c(4, 3, 2))
  expect_equal(rkeras:::rk_take_rows(a, 2:3), a[2:3, , , drop = FALSE])
  expect_equal(rkeras:::rk_take_rows(array(1:4, 4), c(1, 4)), array(c(1L, 4L), 2))
  expect_silent(rkeras:::rk_check_finite(matrix(c(1, 2, 3, 4), 2), "x"))
  expect_error(rkeras:::rk_check_finite(matrix(c(1, 2, NaN, 4), 2), "x"), class = "rkeras_value_error",
               regexp = "1 NaN value \\(first in row 1\\)")
  # huge but finite values: the fast sum overflows, the slow path finds nothing
  expect_silent(rkeras:::rk_check_finite(c(1e308, 1e308), "x"))

  lab <- list(array = c(0, 2, 1, 2), sparse = TRUE)
  expect_equal(rkeras:::rk_class_weight_to_sample_weight(list("0" = 1, "2" = 5), lab), c(1, 5, 1, 5))
  expect_equal(rkeras:::rk_class_weight_to_sample_weight(c(0.5, 2, 3), lab), c(0.5, 3, 2, 3))
  onehot <- list(array = rbind(c(1, 0), c(0, 1)), sparse = FALSE)
  expect_equal(rkeras:::rk_class_weight_to_sample_weight(c("0" = 2, "1" = 7), onehot), c(2, 7))
  expect_error(rkeras:::rk_class_weight_to_sample_weight(list(a = 1), lab), class = "rkeras_value_error",
               regexp = "0-based class ids")

  d <- list(xs = list(matrix(1:10, 5)), ys = list(list(array = array(0:4, 5), sparse = TRUE)), sw = NULL, n = 5L)
  sp <- rkeras:::rk_split_rows(d, 4L)
  expect_equal(sp$train$n, 4L)
  expect_equal(sp$val$xs[[1]], matrix(c(5L, 10L), 1))
  expect_equal(as.vector(sp$val$ys[[1]]$array), 4L)
})

test_that("validation_split takes the last rows before shuffling, as Keras", {
  set.seed(5)
  x <- matrix(rnorm(50 * 4), ncol = 4)
  y <- sample(0:2, 50, replace = TRUE)
  m <- da_model()
  m |> compile(optimizer = optimizer_sgd(0), loss = "sparse_categorical_crossentropy")
  h <- fit(m, x, y, validation_split = 0.2, epochs = 1, verbose = 0)
  expect_equal(h$metrics$val_loss, evaluate(m, x[41:50, ], y[41:50], verbose = 0)$loss, tolerance = 1e-6)
  expect_equal(h$metrics$loss, evaluate(m, x[1:40, ], y[1:40], verbose = 0)$loss, tolerance = 1e-6)
  expect_error(fit(m, x[1, , drop = FALSE], y[1], validation_split = 0.5, verbose = 0), class = "rkeras_value_error",
               regexp = "not sufficient to split")
})

test_that("class_weight and sample_weight weight the loss; both at once is an error", {
  set.seed(6)
  x <- matrix(rnorm(40 * 4), ncol = 4)
  y <- sample(0:2, 40, replace = TRUE)
  m <- da_model()
  m |> compile(optimizer = "sgd", loss = "sparse_categorical_crossentropy")
  p <- predict(m, x, verbose = 0)
  per <- -log(p[cbind(1:40, y + 1L)])
  w <- runif(40)
  expect_equal(evaluate(m, x, y, sample_weight = w, verbose = 0)$loss, sum(per * w) / 40, tolerance = 1e-5)
  expect_error(fit(m, x, y, class_weight = list("0" = 1), sample_weight = w, verbose = 0),
               class = "rkeras_value_error", regexp = "cannot `class_weight` and `sample_weight`")
  # class_weight in train_on_batch equals the equivalent sample weights
  m2 <- da_model(); set_weights(m2, get_weights(m))
  m2 |> compile(optimizer = optimizer_sgd(0.1), loss = "sparse_categorical_crossentropy")
  m |> compile(optimizer = optimizer_sgd(0.1), loss = "sparse_categorical_crossentropy")
  cw <- list("0" = 1, "1" = 3, "2" = 0.5)
  train_on_batch(m, x, y, class_weight = cw)
  train_on_batch(m2, x, y, sample_weight = c(1, 3, 0.5)[y + 1L])
  expect_equal(get_weights(m), get_weights(m2), tolerance = 1e-6)
})
