# Metrics: direct calls against base R, stateful objects, Keras 3's resolution of
# "accuracy", identifiers, and metric names in fit()'s logs.

test_that("direct calls match base-R formulas", {
  expect_equal(as.numeric(metric_binary_accuracy(c(1, 0, 1), c(0.8, 0.6, 0.4))), mean(c(1, 0, 0)), tolerance = 1e-6)
  expect_equal(as.numeric(metric_binary_accuracy(cbind(c(1, 0, 1)), cbind(c(0.8, 0.6, 0.4)))), c(1, 0, 0))
  expect_equal(as.numeric(metric_binary_accuracy(cbind(c(1, 0)), cbind(c(0.3, 0.2)), threshold = 0.25)), c(1, 1))
  yt <- rbind(c(0, 1, 0), c(1, 0, 0), c(0, 0, 1))
  yp <- rbind(c(0.1, 0.7, 0.2), c(0.2, 0.5, 0.3), c(0.2, 0.2, 0.6))
  expect_equal(as.numeric(metric_categorical_accuracy(yt, yp)), c(1, 0, 1))
  expect_equal(as.numeric(metric_sparse_categorical_accuracy(c(1, 0, 2), yp)), c(1, 0, 1))
  expect_equal(as.numeric(metric_sparse_categorical_accuracy(cbind(c(1, 1, 2)), yp)), c(1, 1, 1))
  expect_equal(as.numeric(metric_mean_absolute_error(yt, yp)), rowMeans(abs(yt - yp)), tolerance = 1e-6)
  expect_equal(as.numeric(metric_mean_squared_error(yt, yp)), rowMeans((yt - yp)^2), tolerance = 1e-6)
})

test_that("metric objects are stateful weighted means with keras3 classes", {
  m <- metric_sparse_categorical_accuracy()
  expect_s3_class(m, "keras.src.metrics.accuracy_metrics.SparseCategoricalAccuracy")
  expect_s3_class(m, "keras.src.metrics.metric.Metric")
  expect_equal(m$name, "sparse_categorical_accuracy")
  p <- rbind(c(0.9, 0.1), c(0.8, 0.2))
  expect_equal(m(c(0, 1), p), 0.5)
  m$update_state(c(0, 0), p)
  expect_equal(m$result(), 3 / 4)
  m$update_state(c(1), rbind(c(0.1, 0.9)), sample_weight = 4)
  expect_equal(m$result(), 7 / 8)
  m$reset_state()
  expect_equal(m$result(), 0)
  expect_equal(metric_mean_absolute_error(name = "err")$name, "err")
  expect_s3_class(metric_binary_accuracy(), "keras.src.metrics.accuracy_metrics.BinaryAccuracy")
  expect_equal(metric_binary_accuracy(threshold = 0.7)$threshold, 0.7)
  expect_output(print(metric_mean_squared_error()), "MeanSquaredError")
})

test_that("\"accuracy\" resolves as Keras 3 does from label and output shapes", {
  res <- function(y_rank, y_last, out_rank, out_last, id = "accuracy")
    rkeras:::rk_resolve_metric(id, NULL, y_rank, y_last, out_rank, out_last)$kind
  expect_equal(res(1, 100, 2, 10), "sparse_categorical_accuracy")  # integer labels, softmax output
  expect_equal(res(2, 1, 2, 10), "sparse_categorical_accuracy")    # (N, 1) labels
  expect_equal(res(2, 10, 2, 10), "categorical_accuracy")          # one-hot labels
  expect_equal(res(2, 1, 2, 1), "binary_accuracy")                 # sigmoid output
  expect_equal(res(1, 100, 2, 1), "binary_accuracy")
  expect_equal(res(1, 100, 2, 10, "acc"), "sparse_categorical_accuracy")
  r <- rkeras:::rk_resolve_metric("acc", NULL, 2, 10, 2, 10)
  expect_equal(r$name, "acc")
  expect_equal(r$direction, "up")
  expect_equal(rkeras:::rk_resolve_metric("mae", NULL, 2, 1, 2, 1)[c("kind", "name", "direction")],
               list(kind = "mean_absolute_error", name = "mae", direction = "down"))
  expect_equal(rkeras:::rk_resolve_metric(metric_mean_squared_error, NULL, 2, 1, 2, 1)$name, "mean_squared_error")
  expect_equal(rkeras:::rk_resolve_metric(metric_binary_accuracy(threshold = 0.3, name = "ba"), NULL, 2, 1, 2, 1)[
    c("kind", "name", "attrs")], list(kind = "binary_accuracy", name = "ba", attrs = list(threshold = 0.3)))
})

test_that("unknown metric identifiers are classed errors", {
  expect_error(rkeras:::rk_check_metric_identifier("accuracyy"), class = "rkeras_value_error",
               regexp = "Could not interpret metric identifier: \"accuracyy\"")
  expect_error(rkeras:::rk_check_metric_identifier(function(y_true, y_pred) 1), class = "rkeras_unsupported_error")
  expect_error(rkeras:::rk_check_metric_identifier(1), class = "rkeras_type_error")
})

test_that("compiled metrics appear in logs under keras3's names and agree with direct calls", {
  set.seed(3)
  x <- matrix(rnorm(60 * 4), ncol = 4)
  y <- as.integer(x[, 1] + x[, 2] > 0)
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(3, activation = "softmax")
  model |> compile(optimizer = "sgd", loss = "sparse_categorical_crossentropy",
                   metrics = list("accuracy", metric_sparse_categorical_accuracy(name = "sca")))
  ev <- evaluate(model, x, y, verbose = 0)
  expect_equal(names(ev), c("accuracy", "loss", "sca"))
  p <- predict(model, x, verbose = 0)
  expect_equal(ev$accuracy, mean(max.col(p, ties.method = "first") - 1L == y), tolerance = 1e-6)
  expect_equal(ev$sca, ev$accuracy)

  # binary output: "accuracy" is binary accuracy; "acc" keeps its name
  yb <- cbind(as.numeric(x[, 1] > 0))
  mb <- keras_model_sequential(input_shape = 4) |> layer_dense(1, activation = "sigmoid")
  mb |> compile(loss = "binary_crossentropy", metrics = c("acc", "mse"))
  eb <- evaluate(mb, x, yb, verbose = 0)
  expect_equal(names(eb), c("acc", "loss", "mse"))
  pb <- predict(mb, x, verbose = 0)
  expect_equal(eb$acc, mean((pb > 0.5) == yb), tolerance = 1e-6)
  expect_equal(eb$mse, mean((pb - yb)^2), tolerance = 1e-5)
})
