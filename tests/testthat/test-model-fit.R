# fit(), evaluate(), predict() and the *_on_batch() verbs: keras3 signatures and return
# types, training that works, evaluate() against base R, reproducibility under set.seed().

mf_data <- function(n = 200) {
  set.seed(11)
  x <- matrix(rnorm(n * 3), ncol = 3)
  y <- cbind(x %*% c(1.5, -2, 0.5) + 0.3)
  list(x = x, y = y)
}

mf_model <- function() keras_model_sequential(input_shape = 3) |> layer_dense(1)

test_that("signatures and defaults follow keras3", {
  f <- formals(rkeras:::fit.keras.src.models.model.Model)
  expect_equal(names(f), c("object", "x", "y", "...", "batch_size", "epochs", "callbacks", "validation_split",
                           "validation_data", "shuffle", "class_weight", "sample_weight", "initial_epoch",
                           "steps_per_epoch", "validation_steps", "validation_batch_size", "validation_freq",
                           "verbose", "view_metrics"))
  expect_equal(f$epochs, 1L)
  expect_equal(f$initial_epoch, 1L)
  expect_equal(names(formals(rkeras:::evaluate.keras.src.models.model.Model)),
               c("object", "x", "y", "...", "batch_size", "verbose", "sample_weight", "steps", "callbacks"))
  expect_equal(names(formals(rkeras:::predict.keras.src.models.model.Model)),
               c("object", "x", "...", "batch_size", "verbose", "steps", "callbacks"))
  expect_equal(names(formals(train_on_batch)), c("object", "x", "y", "sample_weight", "class_weight"))
})

test_that("a linear regression trains; history, evaluate and predict have keras3's types", {
  d <- mf_data()
  m <- mf_model()
  m |> compile(optimizer = optimizer_sgd(0.05), loss = "mse", metrics = "mae")
  h <- fit(m, d$x, d$y, epochs = 8, batch_size = 16, verbose = 0)
  expect_s3_class(h, "keras_training_history")
  expect_equal(h$params, list(verbose = 0L, epochs = 8L, steps = 13))
  expect_equal(names(h$metrics), c("loss", "mae"))
  expect_length(h$metrics$loss, 8L)
  expect_true(all(diff(h$metrics$loss) < 0))
  expect_lt(tail(h$metrics$loss, 1), 0.01)

  ev <- evaluate(m, d$x, d$y, verbose = 0)
  expect_type(ev, "list")
  expect_equal(names(ev), c("loss", "mae"))
  p <- predict(m, d$x, verbose = 0)
  expect_true(is.array(p) || is.matrix(p))
  expect_type(p, "double")
  expect_equal(dim(p), c(200L, 1L))
  expect_equal(ev$loss, mean((p - d$y)^2), tolerance = 1e-4)
  expect_equal(ev$mae, mean(abs(p - d$y)), tolerance = 1e-4)
  # the model is y = x w + b
  w <- get_weights(m)
  expect_equal(as.numeric(p), as.numeric(d$x %*% w[[1]]) + as.numeric(w[[2]]), tolerance = 1e-5)
  expect_equal(as.numeric(predict(m, d$x, batch_size = 7, verbose = 0)), as.numeric(p), tolerance = 1e-6)
  expect_equal(predict_on_batch(m, d$x[1:5, ]), p[1:5, , drop = FALSE], tolerance = 1e-6)
})

test_that("classification reaches a good accuracy and evaluate() matches base R", {
  set.seed(12)
  x <- matrix(rnorm(600 * 2), ncol = 2)
  y <- as.integer(x[, 1] > 0) + as.integer(x[, 2] > 0)
  m <- keras_model_sequential(input_shape = 2) |> layer_dense(16, activation = "relu") |>
    layer_dense(3, activation = "softmax")
  m |> compile(optimizer = optimizer_adam(0.01), loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  h <- fit(m, x, y, epochs = 15, batch_size = 32, validation_split = 0.2, verbose = 0)
  expect_equal(names(h$metrics), c("accuracy", "loss", "val_accuracy", "val_loss"))
  expect_gt(tail(h$metrics$val_accuracy, 1), 0.85)
  ev <- evaluate(m, x, y, verbose = 0)
  p <- predict(m, x, verbose = 0)
  expect_equal(ev$loss, mean(-log(p[cbind(seq_len(600), y + 1L)])), tolerance = 1e-5)
  expect_equal(ev$accuracy, mean(max.col(p, ties.method = "first") - 1L == y), tolerance = 1e-6)
  df <- as.data.frame(h)
  expect_equal(nrow(df), 15 * 4)
})

test_that("set.seed() makes histories, weights and predictions identical", {
  run <- function() {
    set.seed(42)
    x <- matrix(rnorm(100 * 3), ncol = 3)
    y <- as.integer(x[, 1] > 0)
    m <- keras_model_sequential(input_shape = 3) |> layer_dense(8, activation = "relu") |>
      layer_dropout(0.3) |> layer_dense(2, activation = "softmax")
    m |> compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
    h <- fit(m, x, y, epochs = 3, batch_size = 10, validation_split = 0.2, verbose = 0)
    list(h = h$metrics, w = get_weights(m), p = predict(m, x, verbose = 0))
  }
  a <- run()
  b <- run()
  expect_identical(a$h, b$h)
  expect_identical(a$w, b$w)
  expect_identical(a$p, b$p)
})

test_that("initial_epoch, validation_data, validation_freq and steps_per_epoch", {
  d <- mf_data(100)
  m <- mf_model()
  m |> compile(optimizer = optimizer_sgd(0.01), loss = "mse")
  h <- fit(m, d$x, d$y, epochs = 5, initial_epoch = 3, batch_size = 10, verbose = 0)
  expect_length(h$metrics$loss, 3L)
  h <- fit(m, d$x, d$y, epochs = 4, batch_size = 10, validation_data = list(d$x[1:20, ], d$y[1:20, ]),
           validation_freq = 2, verbose = 0)
  expect_true(all(is.na(h$metrics$val_loss[c(1, 3)])))
  expect_false(anyNA(h$metrics$val_loss[c(2, 4)]))
  before <- m$optimizer$iterations
  h <- fit(m, d$x, d$y, epochs = 2, batch_size = 10, steps_per_epoch = 3, verbose = 0)
  expect_equal(h$params$steps, 3)
  expect_equal(m$optimizer$iterations - before, 6L)
  expect_error(fit(m, d$x, d$y, validation_data = list(d$x), verbose = 0), class = "rkeras_value_error")
  expect_error(fit(m, d$x, d$y, epochs = 2, foo = 1, verbose = 0), class = "rkeras_value_error", regexp = "foo")
})

test_that("train_on_batch / test_on_batch return the loss, or a named list with metrics", {
  d <- mf_data(32)
  m <- mf_model()
  m |> compile(optimizer = optimizer_sgd(0.01), loss = "mse")
  w0 <- get_weights(m)
  l <- train_on_batch(m, d$x, d$y)
  expect_type(l, "double")
  expect_length(l, 1L)
  expect_false(identical(get_weights(m), w0))
  expect_equal(m$optimizer$iterations, 1L)
  m |> compile(optimizer = optimizer_sgd(0.01), loss = "mse", metrics = "mae")
  r <- test_on_batch(m, d$x, d$y)
  expect_equal(names(r), c("loss", "mae"))
  p <- predict_on_batch(m, d$x)
  expect_equal(r$loss, mean((p - d$y)^2), tolerance = 1e-5)
})

test_that("a two-input functional model takes a named list of inputs", {
  set.seed(13)
  a <- keras_input(shape = 2, name = "a")
  b <- keras_input(shape = 3, name = "b")
  out <- layer_concatenate(list(a, b)) |> layer_dense(1)
  m <- keras_model(list(a, b), out)
  m |> compile(optimizer = "sgd", loss = "mse")
  xa <- matrix(rnorm(20), 10); xb <- matrix(rnorm(30), 10); y <- rnorm(10)
  e1 <- evaluate(m, list(a = xa, b = xb), y, verbose = 0)
  e2 <- evaluate(m, list(b = xb, a = xa), y, verbose = 0)
  e3 <- evaluate(m, list(xa, xb), y, verbose = 0)
  expect_equal(e1, e2)
  expect_equal(e1, e3)
  expect_error(evaluate(m, list(a = xa, c = xb), y, verbose = 0), class = "rkeras_value_error",
               regexp = "named list with names \"a\", \"c\"")
  expect_error(evaluate(m, xa, y, verbose = 0), class = "rkeras_value_error", regexp = "2 inputs")
  h <- fit(m, list(a = xa, b = xb), y, epochs = 2, verbose = 0)
  expect_length(h$metrics$loss, 2L)
})

test_that("an interrupt stops training between steps and returns the history so far", {
  d <- mf_data(40)
  m <- mf_model()
  m |> compile(optimizer = optimizer_sgd(0.01), loss = "mse")
  stopper <- callback_lambda(on_train_batch_end = function(batch, logs) {
    if (m$optimizer$iterations == 6L) signalCondition(structure(class = c("interrupt", "condition"), list()))
  })
  expect_message(h <- fit(m, d$x, d$y, epochs = 5, batch_size = 10, callbacks = list(stopper), verbose = 0),
                 "interrupted.*1 completed epoch")
  expect_length(h$metrics$loss, 1L)
  expect_equal(m$optimizer$iterations, 6L)
  # the model is still usable
  expect_length(fit(m, d$x, d$y, epochs = 1, verbose = 0)$metrics$loss, 1L)
})
