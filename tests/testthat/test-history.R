make_history <- function(epochs = 3L, validation = TRUE, trained = epochs) {
  metrics <- list(loss = c(0.9, 0.5, 0.30461, 0.2, 0.1)[seq_len(trained)],
                  accuracy = c(0.7, 0.85, 0.89113, 0.9, 0.95)[seq_len(trained)])
  if (validation) {
    metrics$val_loss <- c(1.0, 0.6, 0.41234, 0.4, 0.3)[seq_len(trained)]
    metrics$val_accuracy <- c(0.6, 0.8, 0.8512, 0.86, 0.87)[seq_len(trained)]
  }
  new_training_history(
    params = list(verbose = 0L, epochs = epochs, steps = 469L),
    metrics = metrics
  )
}

test_that("new_training_history has keras3's structure", {
  h <- make_history()
  expect_s3_class(h, "keras_training_history")
  expect_identical(names(h), c("params", "metrics"))
  expect_identical(names(h$params), c("verbose", "epochs", "steps"))
  expect_identical(names(h$metrics),
                   c("loss", "accuracy", "val_loss", "val_accuracy"))
  expect_type(h$metrics$loss, "double")
})

test_that("new_training_history pads short metrics with NA", {
  h <- new_training_history(list(epochs = 3L),
                            list(loss = c(1, 2, 3), val_loss = c(4, 5)))
  expect_identical(h$metrics$val_loss, c(4, 5, NA))
  expect_error(new_training_history(list(), list(1, 2)),
               class = "rkeras_value_error")
})

test_that("print shows the final epoch, right-aligned, 4 significant digits", {
  h <- make_history()
  out <- capture.output(print(h))
  expect_identical(out[1], "")
  expect_identical(out[2], "Final epoch (plot to see history):")
  expect_identical(out[3], "        loss: 0.3046")
  expect_identical(out[4], "    accuracy: 0.8911")
  expect_identical(out[5], "    val_loss: 0.4123")
  expect_identical(out[6], "val_accuracy: 0.8512 ")
  expect_output(print(h), "Final epoch \\(plot to see history\\):")
  expect_output(print(h), "\n    accuracy: 0\\.8911")
  expect_output(expect_invisible(print(h)))
})

test_that("print uses the last trained epoch after early stopping", {
  h <- make_history(epochs = 5L, trained = 2L)
  expect_output(print(h), "\n        loss: 0\\.5\n")
})

test_that("print shows the samples line when params has samples", {
  h <- make_history()
  h$params$samples <- 60000L
  h$params$batch_size <- 128L
  expect_output(print(h),
    "^Trained on 60,000 samples \\(batch_size=128, epochs=3\\)\nFinal epoch")
})

test_that("as.data.frame gives keras3's long format", {
  h <- make_history()
  df <- as.data.frame(h)
  expect_identical(names(df), c("epoch", "value", "metric", "data"))
  expect_identical(nrow(df), 12L)
  expect_identical(df$epoch, rep(1:3, 4))
  expect_identical(df$value, c(0.9, 0.5, 0.30461, 0.7, 0.85, 0.89113,
                               1.0, 0.6, 0.41234, 0.6, 0.8, 0.8512))
  expect_identical(levels(df$metric), c("loss", "accuracy"))
  expect_identical(as.character(df$metric),
                   rep(c("loss", "accuracy", "loss", "accuracy"), each = 3))
  expect_identical(levels(df$data), c("training", "validation"))
  expect_identical(as.character(df$data),
                   rep(c("training", "validation"), each = 6))
})

test_that("as.data.frame pads to params$epochs after early stopping", {
  df <- as.data.frame(make_history(epochs = 5L, trained = 2L, validation = FALSE))
  expect_identical(nrow(df), 10L)
  expect_identical(df$epoch, rep(1:5, 2))
  expect_identical(df$value, c(0.9, 0.5, NA, NA, NA, 0.7, 0.85, NA, NA, NA))
  expect_identical(as.character(unique(df$data)), "training")
})

test_that("plot returns a ggplot object faceted by metric", {
  skip_if_not_installed("ggplot2")
  h <- make_history(epochs = 12L, trained = 5L)
  p <- plot(h)
  expect_s3_class(p, "ggplot")
  expect_s3_class(p$facet, "FacetGrid")
  expect_identical(levels(p$data$metric), c("loss", "accuracy"))
  p2 <- plot(h, metrics = "loss", method = "ggplot2", theme_bw = TRUE)
  expect_s3_class(p2, "ggplot")
  expect_identical(unique(as.character(p2$data$metric)), "loss")
  # smoothing only with >= 10 epochs
  long <- new_training_history(list(epochs = 12L),
                               list(loss = exp(-(1:12)), val_loss = exp(-(1:12) / 2)))
  layers <- vapply(plot(long)$layers, function(l) class(l$geom)[1], "")
  expect_true("GeomSmooth" %in% layers)
  layers <- vapply(plot(long, smooth = FALSE)$layers,
                   function(l) class(l$geom)[1], "")
  expect_false("GeomSmooth" %in% layers)
  f <- tempfile(fileext = ".png")
  grDevices::png(f)
  on.exit({ grDevices::dev.off(); unlink(f) }, add = TRUE)
  expect_no_error(print(plot(long)))
})

test_that("plot works with base graphics", {
  f <- tempfile(fileext = ".png")
  grDevices::png(f)
  on.exit(unlink(f), add = TRUE)
  h <- make_history()
  expect_invisible(res <- plot(h, method = "base"))
  expect_identical(res, h)
  expect_no_error(plot(make_history(validation = FALSE), method = "base"))
  expect_no_error(plot(h, metrics = "accuracy", method = "base"))
  grDevices::dev.off()
  expect_true(file.exists(f))
})

test_that("plot rejects unknown metrics", {
  expect_error(plot(make_history(), metrics = "auc", method = "base"),
               class = "rkeras_value_error")
})
