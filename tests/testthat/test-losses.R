# Losses: direct calls against base-R formulas, loss objects (class, config, reduction),
# identifiers accepted by compile(), errors.

yt <- rbind(c(0, 1, 0), c(1, 0, 0), c(0, 0, 1))
yp <- rbind(c(0.1, 0.7, 0.2), c(0.5, 0.3, 0.2), c(0.2, 0.2, 0.6))
clip <- function(p) pmin(pmax(p, 1e-7), 1 - 1e-7)

test_that("mean squared / absolute error and huber match their formulas", {
  expect_equal(as.numeric(loss_mean_squared_error(yt, yp)), rowMeans((yt - yp)^2), tolerance = 1e-6)
  expect_equal(as.numeric(loss_mean_absolute_error(yt, yp)), rowMeans(abs(yt - yp)), tolerance = 1e-6)
  y1 <- c(0, 1, 2, -1); p1 <- c(0.5, 3, 2, 1.5)
  huber <- function(e, d) ifelse(abs(e) <= d, 0.5 * e^2, d * abs(e) - 0.5 * d^2)
  # rank-1 data: the mean over the last (only) axis
  expect_equal(as.numeric(loss_huber(y1, p1)), mean(huber(p1 - y1, 1)), tolerance = 1e-6)
  expect_equal(as.numeric(loss_huber(cbind(y1), cbind(p1), delta = 2)), huber(p1 - y1, 2), tolerance = 1e-6)
  # a vector of labels against an (N, 1) prediction is aligned, as Keras does
  expect_equal(as.numeric(loss_mean_squared_error(y1, cbind(p1))), (p1 - y1)^2, tolerance = 1e-6)
})

test_that("cross-entropies match their formulas, with label smoothing and logits", {
  expect_equal(as.numeric(loss_categorical_crossentropy(yt, yp)), -rowSums(yt * log(clip(yp))), tolerance = 1e-6)
  ls <- 0.1
  yts <- yt * (1 - ls) + ls / 3
  expect_equal(as.numeric(loss_categorical_crossentropy(yt, yp, label_smoothing = ls)),
               -rowSums(yts * log(clip(yp))), tolerance = 1e-5)
  logits <- log(yp) + 0.3
  expect_equal(as.numeric(loss_categorical_crossentropy(yt, logits, from_logits = TRUE)),
               -rowSums(yt * log(yp)), tolerance = 1e-5)
  expect_equal(as.numeric(loss_sparse_categorical_crossentropy(c(1, 0, 2), yp)), -log(c(0.7, 0.5, 0.6)),
               tolerance = 1e-6)
  expect_equal(as.numeric(loss_sparse_categorical_crossentropy(cbind(c(1L, 0L, 2L)), logits, from_logits = TRUE)),
               -log(c(0.7, 0.5, 0.6)), tolerance = 1e-5)
  expect_equal(as.numeric(loss_sparse_categorical_crossentropy(factor(c("b", "a", "c")), yp)),
               -log(c(0.7, 0.5, 0.6)), tolerance = 1e-6)

  bt <- cbind(c(1, 0, 1, 0)); bp <- cbind(c(0.9, 0.2, 0.4, 0.6))
  bce <- function(t, p) as.numeric(-(t * log(clip(p)) + (1 - t) * log(1 - clip(p))))
  expect_equal(as.numeric(loss_binary_crossentropy(bt, bp)), bce(bt, bp), tolerance = 1e-6)
  expect_equal(as.numeric(loss_binary_crossentropy(bt, bp, label_smoothing = 0.2)),
               bce(bt * 0.8 + 0.1, bp), tolerance = 1e-6)
  z <- qlogis(bp)
  expect_equal(as.numeric(loss_binary_crossentropy(bt, z, from_logits = TRUE)), bce(bt, bp), tolerance = 1e-5)
  # multi-label rows: the mean over the last axis
  expect_equal(as.numeric(loss_binary_crossentropy(yt, yp)), rowMeans(matrix(bce(yt, yp), 3)), tolerance = 1e-6)
})

test_that("loss objects: keras3 classes, config, callable with reduction and sample weights", {
  l <- loss_sparse_categorical_crossentropy(from_logits = TRUE)
  expect_s3_class(l, "keras.src.losses.losses.SparseCategoricalCrossentropy")
  expect_s3_class(l, "keras.src.losses.loss.Loss")
  expect_true(is.function(l))
  expect_equal(l$name, "sparse_categorical_crossentropy")
  expect_true(l$from_logits)
  expect_equal(l$reduction, "sum_over_batch_size")
  expect_output(print(l), "SparseCategoricalCrossentropy")

  m <- loss_mean_squared_error()
  expect_s3_class(m, "keras.src.losses.losses.MeanSquaredError")
  per <- rowMeans((yt - yp)^2)
  expect_equal(m(yt, yp), mean(per), tolerance = 1e-6)
  w <- c(1, 0, 2)
  expect_equal(m(yt, yp, sample_weight = w), sum(per * w) / 3, tolerance = 1e-6)
  expect_equal(loss_mean_squared_error(reduction = "sum")(yt, yp), sum(per), tolerance = 1e-6)
  expect_equal(as.numeric(loss_mean_squared_error(reduction = "none")(yt, yp)), per, tolerance = 1e-6)
  expect_equal(loss_huber()$name, "huber_loss")
  expect_equal(loss_huber(delta = 2)$delta, 2)
})

test_that("compile identifiers resolve to loss objects; unknown ones are classed errors", {
  get <- rkeras:::rk_get_loss
  for (s in c("mse", "mean_squared_error", "MeanSquaredError"))
    expect_s3_class(get(s), "keras.src.losses.losses.MeanSquaredError")
  expect_s3_class(get("mae"), "keras.src.losses.losses.MeanAbsoluteError")
  expect_s3_class(get("binary_crossentropy"), "keras.src.losses.losses.BinaryCrossentropy")
  expect_s3_class(get("categorical_crossentropy"), "keras.src.losses.losses.CategoricalCrossentropy")
  expect_s3_class(get("sparse_categorical_crossentropy"), "keras.src.losses.losses.SparseCategoricalCrossentropy")
  expect_s3_class(get("huber"), "keras.src.losses.losses.Huber")
  expect_s3_class(get(loss_categorical_crossentropy), "keras.src.losses.losses.CategoricalCrossentropy")
  l <- loss_huber(delta = 3)
  expect_identical(get(l), l)
  expect_equal(rkeras:::rk_loss_spec(l), list(kind = "huber", attrs = list(delta = 3), name = "huber_loss"))
  expect_error(get("msee"), class = "rkeras_value_error",
               regexp = "Could not interpret loss identifier: \"msee\". Known losses: \"mse\", \"mae\"")
  expect_error(get(function(y_true, y_pred) 0), class = "rkeras_unsupported_error")
  expect_error(get(42), class = "rkeras_type_error")
})

test_that("bad arguments are classed errors", {
  expect_error(loss_binary_crossentropy(label_smoothing = 2), class = "rkeras_value_error")
  expect_error(loss_categorical_crossentropy(axis = 1), class = "rkeras_unsupported_error")
  expect_error(loss_mean_squared_error(reduction = "avg"), class = "rkeras_value_error",
               regexp = "sum_over_batch_size")
  expect_error(loss_mean_squared_error(yt), class = "rkeras_value_error", regexp = "y_pred")
  expect_error(loss_categorical_crossentropy(c(0, 1, 2), yp), class = "rkeras_shape_error")
  expect_error(loss_mean_squared_error(c(1, NA), c(1, 2)), class = "rkeras_value_error", regexp = "NA")
  expect_error(loss_mean_squared_error(yt, yp, foo = 1), class = "rkeras_value_error", regexp = "foo")
})
