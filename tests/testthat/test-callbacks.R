# Callbacks: callback_lambda hooks (1-based epochs and batches, logs), early stopping with
# Keras 3's rules (patience, min_delta, baseline, restore_best_weights), stop_training.

cb_setup <- function() {
  set.seed(21)
  x <- matrix(rnorm(50 * 3), ncol = 3)
  y <- cbind(x %*% c(1, 2, 3))
  m <- keras_model_sequential(input_shape = 3) |> layer_dense(1)
  list(x = x, y = y, m = m)
}

test_that("callback_lambda hooks get 1-based epochs and batches and the logs", {
  s <- cb_setup()
  s$m |> compile(optimizer = optimizer_sgd(0.01), loss = "mse", metrics = "mae")
  calls <- character()
  cb <- callback_lambda(
    on_train_begin = function(logs) calls <<- c(calls, "train_begin"),
    on_epoch_begin = function(epoch, logs) calls <<- c(calls, paste0("epoch_begin", epoch)),
    on_epoch_end = function(epoch, logs) calls <<- c(calls, sprintf("epoch_end%d:%s", epoch,
                                                                      paste(names(logs), collapse = ","))),
    on_train_batch_begin = function(batch, logs) calls <<- c(calls, paste0("b", batch)),
    on_train_batch_end = function(batch, logs) calls <<- c(calls, paste0("e", batch)),
    on_train_end = function(logs) calls <<- c(calls, "train_end"))
  expect_s3_class(cb, "keras.src.callbacks.lambda_callback.LambdaCallback")
  expect_s3_class(cb, "keras.src.callbacks.callback.Callback")
  fit(s$m, s$x, s$y, epochs = 2, batch_size = 20, validation_split = 0.2, callbacks = list(cb), verbose = 0)
  expect_equal(calls, c("train_begin",
                        "epoch_begin1", "b1", "e1", "b2", "e2", "epoch_end1:loss,mae,val_loss,val_mae",
                        "epoch_begin2", "b1", "e1", "b2", "e2", "epoch_end2:loss,mae,val_loss,val_mae",
                        "train_end"))
  # a function taking only the epoch is fine; values in logs are numbers
  seen <- list()
  fit(s$m, s$x, s$y, epochs = 2, initial_epoch = 2, verbose = 0,
      callbacks = callback_lambda(on_epoch_end = function(epoch) seen[[length(seen) + 1L]] <<- epoch))
  expect_equal(seen, list(2L))
  logs_seen <- NULL
  h <- fit(s$m, s$x, s$y, epochs = 1, verbose = 0,
           callbacks = callback_lambda(on_epoch_end = function(epoch, logs) logs_seen <<- logs))
  expect_equal(logs_seen$loss, h$metrics$loss)
})

test_that("callback_lambda rejects unknown hooks and non-functions", {
  expect_error(callback_lambda(on_epoch_ends = function(e, l) 1), class = "rkeras_value_error",
               regexp = "Unknown callback hook")
  expect_error(callback_lambda(on_epoch_end = 1), class = "rkeras_type_error")
  expect_s3_class(callback_lambda(on_test_begin = function(logs) NULL), "rkeras_callback")
  expect_error(fit(keras_model_sequential(input_shape = 1) |> layer_dense(1), callbacks = list(1)),
               class = "rkeras_value_error")  # not compiled comes first
})

test_that("stop_training set from a batch hook stops at that step", {
  s <- cb_setup()
  s$m |> compile(optimizer = optimizer_sgd(0.01), loss = "mse")
  cb <- callback_lambda(on_train_batch_end = function(batch, logs) if (batch == 2) s$m$stop_training <- TRUE)
  h <- fit(s$m, s$x, s$y, epochs = 5, batch_size = 10, callbacks = list(cb), verbose = 0)
  expect_equal(s$m$optimizer$iterations, 2L)
  expect_length(h$metrics$loss, 1L)  # the stopped epoch still ends (on_epoch_end, history), as Keras
})

# Drives early stopping over a sequence of monitored values, setting a distinct weight
# value per epoch so that restored weights can be told apart.
es_drive <- function(cb, values, model, monitor = "val_loss") {
  rkeras:::rk_callbacks_setup(list(cb), model, list(verbose = 0L, epochs = length(values), steps = 1L))
  rkeras:::rk_callbacks_call(list(cb), "on_train_begin", logs = list())
  stopped <- NA
  for (e in seq_along(values)) {
    set_weights(model, list(matrix(e, 1, 1), array(e, 1)))
    logs <- list(loss = 1)
    logs[[monitor]] <- values[[e]]
    rkeras:::rk_callbacks_call(list(cb), "on_epoch_end", e, logs)
    if (model$stop_training) { stopped <- e; break }
  }
  rkeras:::rk_callbacks_call(list(cb), "on_train_end", logs = list())
  stopped
}

test_that("early stopping follows Keras 3: patience, min_delta, mode, baseline, restore_best_weights", {
  m <- keras_model_sequential(input_shape = 1) |> layer_dense(1)
  m |> compile(optimizer = "sgd", loss = "mse", metrics = "accuracy")
  m$stop_training <- FALSE
  # best 0.8 at epoch 2, then 2 epochs without improvement -> stop at epoch 4
  expect_equal(es_drive(callback_early_stopping(patience = 2), c(1, 0.8, 0.9, 0.85, 0.7), m), 4L)
  m$stop_training <- FALSE
  # patience 0 stops at the first non-improvement (never at the first epoch)
  expect_equal(es_drive(callback_early_stopping(), c(1, 1.1, 0.5), m), 2L)
  m$stop_training <- FALSE
  # min_delta: an improvement of 0.05 < 0.1 does not count
  expect_equal(es_drive(callback_early_stopping(min_delta = 0.1, patience = 1), c(1, 0.95, 0.5), m), 2L)
  m$stop_training <- FALSE
  # accuracy is maximised in auto mode
  expect_true(is.na(es_drive(callback_early_stopping(monitor = "val_accuracy"), c(0.5, 0.6, 0.7), m,
                             monitor = "val_accuracy")))
  m$stop_training <- FALSE
  expect_equal(es_drive(callback_early_stopping(monitor = "val_accuracy", mode = "min"), c(0.5, 0.6), m,
                        monitor = "val_accuracy"), 2L)
  m$stop_training <- FALSE
  # baseline not beaten: improvements do not reset the wait, so the first worse epoch stops
  expect_equal(es_drive(callback_early_stopping(baseline = 0.1, patience = 2), c(1, 0.9, 0.95), m), 3L)
  m$stop_training <- FALSE
  expect_true(is.na(es_drive(callback_early_stopping(patience = 2), c(1, 0.9, 0.95), m)))
  m$stop_training <- FALSE
  # start_from_epoch: the first epochs are not watched
  expect_equal(es_drive(callback_early_stopping(start_from_epoch = 2), c(1, 2, 3, 4), m), 4L)
  m$stop_training <- FALSE
  # restore_best_weights: weights of the best epoch (2) come back, with messages at verbose 1
  cb <- callback_early_stopping(patience = 1, restore_best_weights = TRUE, verbose = 1)
  expect_output(stopped <- es_drive(cb, c(1, 0.5, 0.7, 0.2), m),
                "Restoring model weights from the end of the best epoch: 2\\.\nEpoch 3: early stopping")
  expect_equal(stopped, 3L)
  expect_equal(as.numeric(get_weights(m)[[1]]), 2)
  m$stop_training <- FALSE
  expect_warning(es_drive(callback_early_stopping(monitor = "val_los", mode = "min"), 1, m,
                          monitor = "val_loss"), "val_los.*not available")
  expect_error(es_drive(callback_early_stopping(monitor = "val_los"), c(1, 2), m), class = "rkeras_value_error",
               regexp = "isn't able to automatically determine")
})

test_that("early stopping ends fit() at the right epoch and restores the best weights", {
  s <- cb_setup()
  s$m |> compile(optimizer = optimizer_sgd(0), loss = "mse")  # lr 0: the loss never improves
  h <- fit(s$m, s$x, s$y, epochs = 10, batch_size = 10, verbose = 0,
           callbacks = list(callback_early_stopping(monitor = "loss", patience = 2, min_delta = 1e-4)))
  expect_length(h$metrics$loss, 3L)
  expect_equal(h$params$epochs, 10L)

  s <- cb_setup()
  s$m |> compile(optimizer = optimizer_sgd(0.05), loss = "mse")
  best <- NULL
  track <- callback_lambda(on_epoch_end = function(epoch, logs) if (epoch == 2) best <<- get_weights(s$m))
  # monitor a fake, worsening value after epoch 2 through a hook that edits the logs
  fake <- callback_lambda(on_epoch_end = function(epoch, logs) list(score = c(3, 1, 2, 2.5, 2.6)[epoch]))
  es <- callback_early_stopping(monitor = "score", mode = "min", patience = 2, restore_best_weights = TRUE)
  h <- fit(s$m, s$x, s$y, epochs = 5, batch_size = 10, verbose = 0, callbacks = list(track, fake, es))
  expect_length(h$metrics$loss, 4L)
  expect_equal(h$metrics$score, c(3, 1, 2, 2.5))
  expect_equal(get_weights(s$m), best)
})
