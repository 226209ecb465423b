# Issue 3's must-show list of user errors, in one place: each is a classed R error that names what
# was expected and what was given, raised before any work, and the model is unchanged afterwards
# (same weights, same optimizer step count, still trains). Some are also tested next to their
# code (test-data-adapter.R, test-model-fit.R, ...); this file is the checklist.

# A compiled 4 -> 3 softmax classifier that has already taken a few steps (so that an optimizer
# state exists and would show any stray update).
trained_classifier <- function(loss = "sparse_categorical_crossentropy") {
  set.seed(42)
  model <- keras_model_sequential(input_shape = 4) |>
    layer_dense(8, activation = "relu") |>
    layer_dense(3, activation = "softmax")
  model |> compile(optimizer = "adam", loss = loss, metrics = "accuracy")
  x <- matrix(rnorm(40 * 4), ncol = 4)
  y <- as.integer(x[, 1] > 0) + as.integer(x[, 2] > 0.5)
  if (loss == "categorical_crossentropy") y <- to_categorical(y, 3)
  model |> fit(x, y, epochs = 1, batch_size = 10, verbose = 0)
  list(model = model, x = x, y = y)
}

snapshot <- function(model) {
  list(weights = get_weights(model),
       iterations = if (!is.null(model$optimizer)) model$optimizer$iterations,
       built = model$built,
       n_layers = length(model$layers))
}

# `expr` must fail with `class` and a message matching every pattern in `regexp`, and leave
# `model` as it was.
expect_must_show_error <- function(model, expr, class, regexp) {
  before <- snapshot(model)
  err <- expect_error(expr, class = class)
  expect_s3_class(err, "rkeras_error")
  for (re in regexp) expect_match(conditionMessage(err), re, fixed = TRUE)
  after <- snapshot(model)
  expect_identical(after, before)
  invisible(err)
}

# The model still works after the error: one more epoch moves the optimizer by 4 steps.
expect_still_trains <- function(fx) {
  it <- fx$model$optimizer$iterations
  fx$model |> fit(fx$x, fx$y, epochs = 1, batch_size = 10, verbose = 0)
  expect_equal(fx$model$optimizer$iterations, it + 4L)
}

test_that("wrong feature count", {
  fx <- trained_classifier()
  x5 <- cbind(fx$x, 1)
  for (call in list(quote(fit(fx$model, x5, fx$y, verbose = 0)), quote(evaluate(fx$model, x5, fx$y, verbose = 0)),
                    quote(predict(fx$model, x5, verbose = 0)), quote(train_on_batch(fx$model, x5, fx$y)))) {
    expect_must_show_error(fx$model, eval(call), "rkeras_shape_error",
                           "`x` has 5 columns but the model expects 4.")
  }
  x3d <- array(0, c(40, 2, 2))
  expect_must_show_error(fx$model, fit(fx$model, x3d, fx$y, verbose = 0), "rkeras_shape_error",
                         c("`x` has shape (40, 2, 2)", "expects (None, 4)"))
  expect_still_trains(fx)
})

test_that("wrong label shape for the loss", {
  # integer labels for categorical cross-entropy (one-hot expected)
  fx <- trained_classifier("categorical_crossentropy")
  labels <- max.col(fx$y) - 1L
  expect_must_show_error(fx$model, fit(fx$model, fx$x, labels, verbose = 0), "rkeras_shape_error",
                         c("`y` has shape (40,)", "the model output has shape (None, 3)", "categorical_crossentropy",
                           "to_categorical(y, 3)"))
  # labels with the wrong number of columns
  expect_must_show_error(fx$model, evaluate(fx$model, fx$x, fx$y[, 1:2], verbose = 0), "rkeras_shape_error",
                         c("`y` has shape (40, 2)", "(None, 3)"))
  expect_still_trains(fx)

  # one-hot labels for sparse categorical cross-entropy (class ids expected)
  fx <- trained_classifier()
  onehot <- to_categorical(fx$y, 3)
  expect_must_show_error(fx$model, fit(fx$model, fx$x, onehot, verbose = 0), "rkeras_shape_error",
                         c("`y` has shape (40, 3)", "sparse_categorical_crossentropy expects integer class labels",
                           "of shape (40,)", "one-hot encoded"))
  expect_still_trains(fx)
})

test_that("labels out of range for sparse categorical cross-entropy", {
  fx <- trained_classifier()
  y <- fx$y
  y[7] <- 3L
  expect_must_show_error(fx$model, fit(fx$model, fx$x, y, verbose = 0), "rkeras_value_error",
                         c("class label 3", "3 classes", "in [0, 2]", "0-based"))
  y[7] <- -1L
  expect_must_show_error(fx$model, evaluate(fx$model, fx$x, y, verbose = 0), "rkeras_value_error",
                         c("class label -1", "in [0, 2]"))
  # 1-based labels (R habit) are caught too
  expect_must_show_error(fx$model, fit(fx$model, fx$x, fx$y + 1L, verbose = 0), "rkeras_value_error",
                         "labels are 0-based")
  # and non-integer ones
  y <- as.numeric(fx$y)
  y[2] <- 0.5
  expect_must_show_error(fx$model, fit(fx$model, fx$x, y, verbose = 0), "rkeras_value_error",
                         c("whole-number class labels", "0.5"))
  expect_still_trains(fx)
})

test_that("NA, NaN and Inf in x or y", {
  fx <- trained_classifier()
  for (bad in list(list(NA_real_, "NA"), list(NaN, "NaN"), list(Inf, "Inf"), list(-Inf, "Inf"))) {
    x <- fx$x
    x[5, 2] <- bad[[1]]
    expect_must_show_error(fx$model, fit(fx$model, x, fx$y, verbose = 0), "rkeras_value_error",
                           c("`x` contains 1", bad[[2]], "first in row 5"))
    expect_must_show_error(fx$model, predict(fx$model, x, verbose = 0), "rkeras_value_error",
                           c("`x` contains", bad[[2]]))
  }
  y <- fx$y
  y[9] <- NA
  expect_must_show_error(fx$model, fit(fx$model, fx$x, y, verbose = 0), "rkeras_value_error",
                         c("`y` contains", "NA", "row 9"))
  # float targets (regression)
  set.seed(1)
  reg <- keras_model_sequential(input_shape = 4) |> layer_dense(1)
  reg |> compile(optimizer = "sgd", loss = "mse")
  yr <- matrix(rnorm(40), ncol = 1)
  yr[3] <- Inf
  expect_must_show_error(reg, fit(reg, fx$x, yr, verbose = 0), "rkeras_value_error",
                         c("`y` contains 1 Inf value", "row 3"))
  yr[3] <- NaN
  expect_must_show_error(reg, evaluate(reg, fx$x, yr, verbose = 0), "rkeras_value_error",
                         c("`y` contains 1 NaN value"))
  # validation data are checked before training starts
  xv <- fx$x
  xv[1, 1] <- NA
  expect_must_show_error(fx$model, fit(fx$model, fx$x, fx$y, validation_data = list(xv, fx$y), verbose = 0),
                         "rkeras_value_error", c("`validation_data[[1]]` contains", "NA"))
  expect_still_trains(fx)
})

test_that("non-numeric data.frame column", {
  fx <- trained_classifier()
  df <- as.data.frame(fx$x)
  names(df) <- c("a", "b", "c", "d")
  df$c <- as.character(round(df$c, 1))
  expect_must_show_error(fx$model, fit(fx$model, df, fx$y, verbose = 0), "rkeras_type_error",
                         c("`x` has a non-numeric column \"c\" (character)", "must be numeric"))
  df$c <- factor(df$c)
  expect_must_show_error(fx$model, predict(fx$model, df, verbose = 0), "rkeras_type_error",
                         c("non-numeric column \"c\" (factor)", "to_categorical()"))
  # a numeric data.frame is fine
  df$c <- fx$x[, 3]
  expect_equal(predict(fx$model, df, verbose = 0), predict(fx$model, fx$x, verbose = 0))
  expect_still_trains(fx)
})

test_that("mismatched x / y lengths", {
  fx <- trained_classifier()
  expect_must_show_error(fx$model, fit(fx$model, fx$x, fx$y[-1], verbose = 0), "rkeras_shape_error",
                         c("`x` has 40 samples but `y` has 39", "same number of rows"))
  expect_must_show_error(fx$model, evaluate(fx$model, fx$x[1:10, ], fx$y, verbose = 0), "rkeras_shape_error",
                         "`x` has 10 samples but `y` has 40")
  expect_must_show_error(fx$model, fit(fx$model, fx$x, fx$y, sample_weight = rep(1, 39), verbose = 0),
                         "rkeras_shape_error", "`sample_weight` has 39 values but there are 40 samples")
  expect_still_trains(fx)
})

test_that("unknown loss, optimizer, activation and metric strings", {
  fx <- trained_classifier()
  opt_before <- fx$model$optimizer
  expect_must_show_error(fx$model, compile(fx$model, optimizer = "adamm", loss = "mse"), "rkeras_value_error",
                         c("Could not interpret optimizer identifier: \"adamm\"", "\"adam\""))
  expect_must_show_error(fx$model, compile(fx$model, optimizer = "sgd", loss = "categorical_crossentropyy"),
                         "rkeras_value_error",
                         c("Could not interpret loss identifier: \"categorical_crossentropyy\"",
                           "\"categorical_crossentropy\""))
  expect_must_show_error(fx$model, compile(fx$model, optimizer = "sgd", loss = "mse", metrics = c("acuracy")),
                         "rkeras_value_error",
                         c("Could not interpret metric identifier: \"acuracy\"", "\"accuracy\""))
  # a failed compile() leaves the previous compilation in place
  expect_identical(fx$model$optimizer, opt_before)
  expect_still_trains(fx)
  expect_named(evaluate(fx$model, fx$x, fx$y, verbose = 0), c("accuracy", "loss"))

  # activation: on a layer added to a model, and on a standalone layer
  expect_must_show_error(fx$model, layer_dense(fx$model, 2, activation = "rleu"), "rkeras_value_error",
                         c("unknown activation \"rleu\"", "relu"))
  expect_must_show_error(fx$model, layer_activation(fx$model, "softmaxx"), "rkeras_value_error",
                         c("unknown activation \"softmaxx\"", "softmax"))
  expect_length(fx$model$layers, 2L)
  expect_error(layer_dense(units = 2, activation = "sigmod"), class = "rkeras_value_error",
               regexp = "unknown activation \"sigmod\"")
  expect_still_trains(fx)
})

test_that("fit or evaluate before compile", {
  set.seed(2)
  x <- matrix(rnorm(20 * 3), ncol = 3)
  y <- rnorm(20)
  built <- keras_model_sequential(input_shape = 3) |> layer_dense(1)
  unbuilt <- keras_model_sequential() |> layer_dense(1)
  for (model in list(built, unbuilt)) {
    expect_must_show_error(model, fit(model, x, y, verbose = 0), "rkeras_value_error",
                           "You must call `compile()` before calling `fit()`.")
    expect_must_show_error(model, evaluate(model, x, y, verbose = 0), "rkeras_value_error",
                           "You must call `compile()` before calling `evaluate()`.")
    expect_must_show_error(model, train_on_batch(model, x, y), "rkeras_value_error",
                           "before calling `train_on_batch()`")
    expect_must_show_error(model, test_on_batch(model, x, y), "rkeras_value_error",
                           "before calling `test_on_batch()`")
    expect_null(model$optimizer)
  }
  expect_false(unbuilt$built)
  # predict() needs no compile
  expect_equal(dim(predict(built, x, verbose = 0)), c(20L, 1L))
})

test_that("validation_split outside [0, 1)", {
  fx <- trained_classifier()
  for (vs in list(1, 1.5, -0.1, NA_real_, "0.2", c(0.1, 0.2))) {
    expect_must_show_error(fx$model, fit(fx$model, fx$x, fx$y, validation_split = vs, verbose = 0),
                           "rkeras_value_error", c("`validation_split` must be a number in [0, 1), got"))
  }
  err <- expect_error(fit(fx$model, fx$x, fx$y, validation_split = 1, verbose = 0), class = "rkeras_value_error")
  expect_match(conditionMessage(err), "got 1.", fixed = TRUE)
  # too few samples to split
  expect_must_show_error(fx$model, fit(fx$model, fx$x[1, , drop = FALSE], fx$y[1], validation_split = 0.2,
                                       verbose = 0),
                         "rkeras_value_error", c("contains 1 samples", "validation_split=0.2"))
  # 0 is allowed (no validation) and 0.2 works
  h <- fit(fx$model, fx$x, fx$y, validation_split = 0.2, epochs = 1, batch_size = 8, verbose = 0)
  expect_true("val_loss" %in% names(h$metrics))
  expect_still_trains(fx)
})

test_that("a model without an input shape stays unbuilt when fit()/evaluate() reject the labels", {
  set.seed(3)
  model <- keras_model_sequential() |>
    layer_dense(4, activation = "relu") |>
    layer_dense(3, activation = "softmax")
  model |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy")
  x <- matrix(rnorm(30 * 5), ncol = 5)
  expect_error(fit(model, x, c(0L, 1L, 7L)[rep(1:3, 10)], verbose = 0), class = "rkeras_value_error")
  expect_false(model$built)
  expect_length(get_weights(model), 0L)
  expect_error(evaluate(model, x, 0:1, verbose = 0), class = "rkeras_shape_error")
  expect_false(model$built)
  # It can still be built from other data afterwards, with another feature count.
  x2 <- matrix(rnorm(30 * 6), ncol = 6)
  fit(model, x2, rep(0:2, 10), epochs = 1, verbose = 0)
  expect_true(model$built)
  expect_equal(dim(get_weights(model)[[1]]), c(6L, 4L))
})
