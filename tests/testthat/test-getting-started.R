# A keras3 script of the getting-started kind runs unchanged after swapping library(keras3) for
# library(rkeras): pipes (%>% and |>), %<-% destructuring of the dataset, array_reshape(),
# to_categorical(), compile() with strings, fit() with validation_split, evaluate(), predict() and
# plot(history). The script below is evaluated as a console session would run it (top-level values
# auto-printed, so plot(history) draws with ggplot2), in a fresh environment. Only the training set
# is cut down afterwards to keep the test fast. And set.seed() makes whole runs reproducible.

getting_started_script <- '
library(rkeras)

c(c(x_train, y_train), c(x_test, y_test)) %<-% dataset_fashion_mnist()
x_train <- x_train[1:3000, , ]
y_train <- y_train[1:3000]
x_test <- x_test[1:1000, , ]
y_test <- y_test[1:1000]

# reshape
x_train <- array_reshape(x_train, c(nrow(x_train), 784))
x_test <- array_reshape(x_test, c(nrow(x_test), 784))
# rescale
x_train <- x_train / 255
x_test <- x_test / 255

y_train <- to_categorical(y_train, 10)
y_test <- to_categorical(y_test, 10)

model <- keras_model_sequential(input_shape = c(784))
model %>%
  layer_dense(units = 256, activation = "relu") %>%
  layer_dropout(rate = 0.4) %>%
  layer_dense(units = 128, activation = "relu") |>
  layer_dropout(rate = 0.3) |>
  layer_dense(units = 10, activation = "softmax")

summary(model)

model %>% compile(
  optimizer = "rmsprop",
  loss = "categorical_crossentropy",
  metrics = c("accuracy")
)

history <- model %>% fit(
  x_train, y_train,
  epochs = 5, batch_size = 128,
  validation_split = 0.2
)

plot(history)

scores <- model %>% evaluate(x_test, y_test)
scores

probs <- model %>% predict(x_test)
pred_classes <- max.col(probs) - 1L
'

# Runs `script` like a console session (top-level values auto-printed) into a png device, in a
# fresh environment. Without a local Fashion-MNIST (cache or Debian's dataset-fashion-mnist, which
# make deps installs) the test is skipped rather than downloading.
run_script <- function(script, seed = 1) {
  env <- new.env(parent = globalenv())
  dev <- tempfile(fileext = ".png")
  grDevices::png(dev)
  on.exit(grDevices::dev.off(), add = TRUE)
  old <- options(rkeras.allow_download = FALSE)
  on.exit(options(old), add = TRUE)
  set.seed(seed)
  out <- tryCatch(
    utils::capture.output(source(exprs = parse(text = script), local = env, echo = FALSE, print.eval = TRUE)),
    rkeras_dataset_error = function(e) testthat::skip(paste("Fashion-MNIST not available locally:",
                                                            conditionMessage(e))))
  list(env = env, output = out, png = dev)
}

test_that("a keras3 getting-started script runs unchanged and learns Fashion-MNIST", {
  r <- run_script(getting_started_script)
  env <- r$env

  # the data as the script left them
  expect_equal(dim(env$x_train), c(3000L, 784L))
  expect_equal(dim(env$y_train), c(3000L, 10L))
  expect_true(all(env$x_train >= 0 & env$x_train <= 1))
  expect_equal(rowSums(env$y_train), rep(1, 3000))

  # summary() printed the keras3 table
  expect_true(any(grepl("Total params: 235,146", r$output, fixed = TRUE)))

  # history: keras3 fields, one value per epoch, training and validation metrics
  h <- env$history
  expect_s3_class(h, "keras_training_history")
  expect_named(h, c("params", "metrics"))
  expect_equal(h$params$epochs, 5L)
  expect_equal(h$params$steps, ceiling(2400 / 128))
  expect_setequal(names(h$metrics), c("accuracy", "loss", "val_accuracy", "val_loss"))
  for (m in h$metrics) {
    expect_length(m, 5L)
    expect_true(all(is.finite(m)))
  }
  expect_lt(h$metrics$loss[5], h$metrics$loss[1])
  expect_gt(h$metrics$accuracy[5], 0.7)
  expect_gt(h$metrics$val_accuracy[5], 0.6)
  df <- as.data.frame(h)
  expect_equal(nrow(df), 5L * 4L)

  # evaluate(): keras3 names, accuracy well above chance (0.1) on held-out data
  s <- env$scores
  expect_named(s, c("accuracy", "loss"))
  expect_gt(s$accuracy, 0.65)
  expect_lt(s$loss, 1.2)
  expect_true(any(grepl("accuracy", r$output)))

  # predict(): one row of class probabilities per test sample
  p <- env$probs
  expect_equal(dim(p), c(1000L, 10L))
  expect_equal(rowSums(p), rep(1, 1000), tolerance = 1e-5)
  expect_true(all(p >= 0 & p <= 1))
  y_true <- max.col(env$y_test) - 1L
  expect_equal(mean(env$pred_classes == y_true), s$accuracy, tolerance = 0.002)

  # plot(history) drew into the device; both methods work
  expect_gt(file.size(r$png), 3000)  # a blank png is about 300 bytes
  skip_if_not_installed("ggplot2")
  f <- tempfile(fileext = ".png")
  grDevices::png(f)
  gp <- plot(h)
  expect_s3_class(gp, "ggplot")
  print(gp)
  expect_invisible(plot(h, method = "base"))
  grDevices::dev.off()
  expect_gt(file.size(f), 1000)
})

test_that("the script's pipes and destructuring are the re-exported %>% and %<-%", {
  expect_identical(rkeras::`%>%`, magrittr::`%>%`)
  expect_identical(rkeras::`%<-%`, zeallot::`%<-%`)
  expect_true(all(c("%>%", "%<-%") %in% getNamespaceExports("rkeras")))
})

# ---- set.seed() reproducibility ------------------------------------------------------------

seeded_run <- function(seed) {
  set.seed(seed)
  n <- 400
  x <- matrix(rnorm(n * 20), ncol = 20)
  y <- as.integer((x[, 1] + x[, 2] - x[, 3]) > 0) + as.integer(x[, 4] > 1)
  model <- keras_model_sequential(input_shape = 20) %>%
    layer_dense(32, activation = "relu") %>%
    layer_dropout(0.5) %>%
    layer_gaussian_noise(0.1) %>%
    layer_dense(3, activation = "softmax")
  model %>% compile(optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = "accuracy")
  history <- model %>% fit(x, y, epochs = 3, batch_size = 32, validation_split = 0.2, verbose = 0)
  list(history = history$metrics, weights = get_weights(model), pred = predict(model, x, verbose = 0),
       next_random = runif(1))
}

test_that("the same set.seed() gives identical histories, weights and predictions (dropout included)", {
  a <- seeded_run(20240)
  b <- seeded_run(20240)
  expect_identical(a$history, b$history)
  expect_identical(a$weights, b$weights)
  expect_identical(a$pred, b$pred)
  expect_identical(a$next_random, b$next_random)
  # and the seed matters: another seed gives other initial weights, batches and dropout masks
  c <- seeded_run(7)
  expect_false(identical(a$weights, c$weights))
  expect_false(identical(a$history$loss, c$history$loss))
})

test_that("dropout in training differs between fit() calls but not between identically seeded runs", {
  set.seed(3)
  x <- matrix(rnorm(64 * 5), ncol = 5)
  y <- matrix(rnorm(64), ncol = 1)
  make <- function() {
    m <- keras_model_sequential(input_shape = 5) %>% layer_dropout(0.5) %>%
      layer_dense(1, kernel_initializer = "ones")
    m %>% compile(optimizer = optimizer_sgd(learning_rate = 0), loss = "mse")
    m
  }
  m <- make()
  # learning rate 0: the weights never move, so the losses differ only by the dropout masks
  set.seed(11)
  l1 <- (m %>% fit(x, y, epochs = 1, batch_size = 64, shuffle = FALSE, verbose = 0))$metrics$loss
  l2 <- (m %>% fit(x, y, epochs = 1, batch_size = 64, shuffle = FALSE, verbose = 0))$metrics$loss
  set.seed(11)
  l1b <- (m %>% fit(x, y, epochs = 1, batch_size = 64, shuffle = FALSE, verbose = 0))$metrics$loss
  expect_false(identical(l1, l2))
  expect_identical(l1, l1b)
  # inference is deterministic (no dropout)
  expect_identical(predict(m, x, verbose = 0), predict(m, x, verbose = 0))
  expect_equal(predict(m, x, verbose = 0), x %*% rep(1, 5), tolerance = 1e-6, ignore_attr = TRUE)
})
