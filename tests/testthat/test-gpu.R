# GPU queries. On machines without a usable GPU (CPU-only builds, no driver, no device) these
# check the reporting; the GPU-only parts skip with the reason. With the fake GPU on
# (RKERAS_FAKE_GPU=1, `make test-fake-gpu`) the GPU tests run on it, and the numbers must then be
# identical to the CPU's (same kernels); the last test switches the fake on for itself.

gpu_skip_reason <- function() {
  paste("no usable GPU:", attr(gpu_info(), "reason"))
}

test_that("gpu_available() and gpu_info() agree and say why there is no GPU", {
  info <- gpu_info()
  expect_s3_class(info, "data.frame")
  expect_identical(names(info), c("device", "name", "memory_total", "memory_free",
                                  "compute_capability", "multiprocessors",
                                  "cuda_runtime", "cuda_driver", "cudnn"))
  expect_identical(gpu_available(), nrow(info) > 0L)
  expect_type(attr(info, "cuda_built"), "logical")
  if (rkeras:::rk_fake_gpu_on()) {
    expect_identical(info$name, "rkeras fake GPU (host memory, for tests)")
    expect_identical(info$compute_capability, "0.0")
  }
  if (!gpu_available()) {
    expect_identical(nrow(info), 0L)
    reason <- attr(info, "reason")
    expect_true(is.character(reason) && nzchar(reason))
    if (!attr(info, "cuda_built")) expect_match(reason, "no CUDA backend")
  } else {
    expect_identical(attr(info, "reason"), "")
    expect_identical(info$device, seq_len(nrow(info)) - 1L)
    expect_true(all(info$memory_total > 0 & info$memory_free <= info$memory_total))
    expect_match(info$compute_capability, "^[0-9]+\\.[0-9]+$")
  }
})

test_that("a CUDA build reports the CUDA runtime and cuDNN versions it links", {
  info <- gpu_info()
  skip_if_not(attr(info, "cuda_built"), "this build has no CUDA backend")
  st <- rkeras:::rk_cuda_status()
  expect_gte(st$runtime_version, 11000L)  # e.g. 13000 for CUDA 13.0
  expect_gte(st$cudnn_version, 8000L)     # e.g. 91900 for cuDNN 9.19.0
})

test_that("without a GPU, asking for CUDA is a classed error that gives the reason", {
  skip_if(gpu_available(), "a GPU is usable here")
  reason <- attr(gpu_info(), "reason")
  built <- attr(gpu_info(), "cuda_built")
  expected <- if (built) "CUDA requested but no usable GPU: " else "this build of rkeras has no CUDA backend"
  err <- expect_error(config_set_backend("cuda"), class = "rkeras_unsupported_error")
  expect_match(conditionMessage(err), expected, fixed = TRUE)
  expect_match(conditionMessage(err), reason, fixed = TRUE)
  err <- expect_error(gpu_memory_stats(), class = "rkeras_unsupported_error")
  expect_match(conditionMessage(err), expected, fixed = TRUE)
  expect_error(gpu_empty_cache(), class = "rkeras_unsupported_error")
  # The failed request leaves the backend as it was.
  expect_identical(config_backend(), "cpu")
  expect_identical(rk_default_device(), "cpu")
  # The engine refuses too, should anything ask it directly, and keeps the CPU as default.
  expect_error(rk_set_default_device("cuda"), class = "rkeras_unsupported_error")
  expect_identical(rk_default_device(), "cpu")
})

test_that("the device argument is validated before the engine is asked", {
  expect_error(gpu_memory_stats(-1), class = "rkeras_value_error")
  expect_error(gpu_memory_stats("0"), class = "rkeras_value_error")
  expect_error(gpu_memory_stats(1.5), class = "rkeras_value_error")
  expect_error(gpu_empty_cache(0, reset_peak = NA), class = "rkeras_value_error")
})

test_that("TF32 is off by default and switchable", {
  expect_error(config_set_gpu_tf32(NA), class = "rkeras_value_error")
  old <- config_set_gpu_tf32(TRUE)
  expect_false(old)
  now <- config_set_gpu_tf32(FALSE)
  # In a CPU-only build the switch is a no-op that always reports FALSE.
  expect_identical(now, attr(gpu_info(), "cuda_built"))
})

test_that("GPU allocator statistics count allocations and empty_cache releases the cache", {
  skip_if_not(gpu_available(), gpu_skip_reason())
  gpu_empty_cache(reset_peak = TRUE)
  s0 <- gpu_memory_stats()
  expect_identical(names(s0), c("current", "peak", "cached", "n_allocs", "n_cache_hits"))
  expect_identical(unname(s0[["cached"]]), 0)
  expect_identical(unname(s0[["peak"]]), unname(s0[["current"]]))
})

# Puts the session's backend request back to `old` and the engine's default device back to
# `device` (a bare config_backend() would not do: it may say "cuda" on a GPU when nothing was
# requested, while the engine starts on the CPU).
restore_backend <- function(old, device = "cpu") {
  rk_config$backend_set <- old
  rk_set_default_device(if (startsWith(device, "cuda")) "cuda" else "cpu")
}

# Makes `backend` ("cpu" or "cuda") the session's backend until the calling function or test (frame
# `env`) ends; then the backend request and the engine's default device are put back.
local_backend <- function(backend, env = parent.frame()) {
  old <- rk_config$backend_set
  device <- rk_default_device()
  restore <- function() restore_backend(old, device)
  # As local_fake_gpu(): the call holds the function itself, so nothing is added to the caller's variables.
  do.call(on.exit, list(as.call(list(restore)), add = TRUE), envir = env)
  config_set_backend(backend)
}

# Evaluates `code` with `backend` as the session's backend (local_backend()) and returns its value.
with_backend <- function(backend, code) {
  local_backend(backend)
  code
}

# Tolerance of GPU-vs-CPU comparisons: the fake GPU runs the CPU's kernels, so none there.
gpu_tol <- function(tol) if (rkeras:::rk_fake_gpu_on()) 0 else tol

# Trains `build()`'s model for one epoch (no shuffling, fixed seed) on the given backend and
# returns the weights and predictions as R arrays. The backend is put back afterwards.
gpu_train_one_epoch <- function(backend, build, x, y, loss) {
  with_backend(backend, {
    set.seed(7)
    m <- build()
    m |> compile(optimizer = optimizer_sgd(learning_rate = 0.05), loss = loss)
    h <- fit(m, x, y, epochs = 1, batch_size = 16, shuffle = FALSE, verbose = 0)
    list(w = get_weights(m), p = predict(m, x, verbose = 0), loss = h$metrics$loss)
  })
}

expect_backend_parity <- function(build, x, y, loss, tol) {
  device <- rk_default_device()
  cpu <- gpu_train_one_epoch("cpu", build, x, y, loss)
  gpu <- gpu_train_one_epoch("cuda", build, x, y, loss)
  expect_identical(rk_default_device(), device)
  expect_true(is.array(gpu$p) || is.matrix(gpu$p))
  expect_identical(dim(gpu$p), dim(cpu$p))
  expect_equal(length(gpu$w), length(cpu$w))
  for (i in seq_along(cpu$w)) {
    expect_true(is.array(gpu$w[[i]]) || is.numeric(gpu$w[[i]]))
    expect_equal(gpu$w[[i]], cpu$w[[i]], tolerance = tol)
  }
  expect_equal(gpu$p, cpu$p, tolerance = tol)
  expect_equal(gpu$loss, cpu$loss, tolerance = tol)
}

test_that("config_set_backend() points the engine's default device at the GPU and back", {
  skip_if_not(gpu_available(), gpu_skip_reason())
  local_backend("cuda")
  expect_identical(rk_default_device(), "cuda:0")
  # Tensors made from R live on the GPU and come back as the same R arrays.
  a <- array(as.double(1:24), c(2, 3, 4))
  expect_identical(as.array(rk_tensor_from_r(a, NULL)), a)
  config_set_backend("cpu")
  expect_identical(rk_default_device(), "cpu")
})

test_that("one epoch of an MLP gives the same weights on the GPU as on the CPU", {
  skip_if_not(gpu_available(), gpu_skip_reason())
  set.seed(1)
  x <- matrix(rnorm(128 * 10), ncol = 10)
  y <- as.integer(x[, 1] + x[, 2] > 0)
  build <- function() {
    keras_model_sequential(input_shape = 10) |> layer_dense(32, activation = "relu") |>
      layer_dense(2, activation = "softmax")
  }
  expect_backend_parity(build, x, y, "sparse_categorical_crossentropy", tol = gpu_tol(1e-4))
})

test_that("one epoch of a convnet gives the same weights on the GPU as on the CPU", {
  skip_if_not(gpu_available(), gpu_skip_reason())
  set.seed(2)
  x <- array(runif(64 * 12 * 12 * 1), c(64, 12, 12, 1))
  y <- sample(0:2, 64, replace = TRUE)
  build <- function() {
    keras_model_sequential(input_shape = c(12, 12, 1)) |>
      layer_conv_2d(8, c(3, 3), activation = "relu") |> layer_max_pooling_2d(c(2, 2)) |>
      layer_flatten() |> layer_dense(3, activation = "softmax")
  }
  expect_backend_parity(build, x, y, "sparse_categorical_crossentropy", tol = gpu_tol(1e-4))
})

test_that("running out of GPU memory is a classed error with the allocator's figures, and the model survives", {
  skip_if_not(gpu_available(), gpu_skip_reason())
  local_backend("cuda")
  set.seed(3)
  # A batch of 1e5 rows through Dense(1e6) needs a 400 GB activation: more than any GPU has.
  m <- keras_model_sequential(input_shape = 4) |> layer_dense(1e6) |> layer_dense(1)
  m |> compile(optimizer = "sgd", loss = "mse")
  x <- matrix(runif(1e5 * 4), ncol = 4)
  y <- runif(1e5)
  w0 <- get_weights(m)
  small <- x[1:8, , drop = FALSE]
  p0 <- predict(m, small, verbose = 0)
  err <- expect_error(predict(m, x, batch_size = 1e5, verbose = 0), class = "rkeras_memory_error")
  expect_match(conditionMessage(err), "out of memory on cuda:0: tried to allocate [0-9.]+ MiB", perl = TRUE)
  expect_match(conditionMessage(err), "MiB in use by rkeras \\(peak [0-9.]+ MiB\\); the GPU has [0-9.]+ MiB free of",
               perl = TRUE)
  err <- expect_error(fit(m, x, y, batch_size = 1e5, epochs = 1, verbose = 0), class = "rkeras_memory_error")
  # The failed step changed nothing, and the model still works on the GPU.
  expect_identical(get_weights(m), w0)
  expect_identical(predict(m, small, verbose = 0), p0)
  gpu_empty_cache()
  expect_lt(unname(gpu_memory_stats()[["current"]]), 1024^3)
})

# Trains `build()`'s model for two epochs with a callback, then evaluates, predicts and round-trips
# the weights, on the engine's current default device; returns everything as R values plus the
# devices the model's weights, optimizer slots and fit data were on.
gpu_run_everything <- function(build, x, y, loss) {
  set.seed(11)
  m <- build()
  m |> compile(optimizer = optimizer_adam(learning_rate = 0.01), loss = loss, metrics = "accuracy")
  seen <- numeric()
  cb <- callback_lambda(on_epoch_end = function(epoch, logs) seen[[length(seen) + 1L]] <<- logs$loss)
  h <- fit(m, x, y, epochs = 2, batch_size = 16, shuffle = TRUE, validation_split = 0.25, callbacks = list(cb),
           verbose = 0)
  ev <- evaluate(m, x, y, verbose = 0)
  p <- predict(m, x, verbose = 0)
  w <- get_weights(m)
  set_weights(m, lapply(w, function(a) a * 0.5))
  rows <- function(a, i) if (length(dim(a)) == 2L) a[i, , drop = FALSE] else a[i, , , , drop = FALSE]
  p_half <- predict(m, rows(x, 1:5), verbose = 0)
  slots <- unlist(rk_optimizer_slots(rk_optimizer_engine_if_any(rk_weights_optimizer(m))), recursive = FALSE)
  expect_gt(length(slots), 0L)
  devices <- c(vapply(rk_layer_trainable_weights(rk_state(m)), function(v) rk_tensor_device(v$tensor), ""),
               vapply(slots, rk_tensor_device, ""),
               rk_tensor_device(rk_tensor_from_r(rows(x, 1:2), "float32")))
  list(history = h$metrics, callback = seen, eval = ev, pred = p, w = w, w_half = get_weights(m),
       p_half = p_half, devices = unique(devices))
}

test_that("on the fake GPU, fit/evaluate/predict/weights/callbacks run on cuda:0 with the CPU's numbers", {
  set.seed(4)
  mlp_x <- matrix(rnorm(96 * 6), ncol = 6)
  mlp_y <- as.integer(mlp_x[, 1] - mlp_x[, 3] > 0)
  mlp <- function() {
    keras_model_sequential(input_shape = 6) |> layer_dense(16, activation = "relu") |> layer_dropout(0.2) |>
      layer_dense(2, activation = "softmax")
  }
  conv_x <- array(runif(48 * 8 * 8 * 2), c(48, 8, 8, 2))
  conv_y <- sample(0:2, 48, replace = TRUE)
  convnet <- function() {
    keras_model_sequential(input_shape = c(8, 8, 2)) |>
      layer_conv_2d(4, c(3, 3), activation = "relu", padding = "same") |> layer_max_pooling_2d(c(2, 2)) |>
      layer_flatten() |> layer_dense(3, activation = "softmax")
  }
  cases <- list(list(mlp, mlp_x, mlp_y), list(convnet, conv_x, conv_y))
  cpu <- lapply(cases, function(k) {
    with_backend("cpu", gpu_run_everything(k[[1]], k[[2]], k[[3]], "sparse_categorical_crossentropy"))
  })
  local_fake_gpu()
  expect_true(gpu_available())
  expect_identical(rk_default_device(), "cuda:0")
  for (i in seq_along(cases)) {
    k <- cases[[i]]
    gpu <- gpu_run_everything(k[[1]], k[[2]], k[[3]], "sparse_categorical_crossentropy")
    expect_identical(gpu$devices, "cuda:0")
    expect_identical(cpu[[i]]$devices, "cpu")
    for (nm in setdiff(names(gpu), "devices")) expect_identical(gpu[[nm]], cpu[[i]][[nm]], label = nm)
  }
  s <- gpu_memory_stats()
  expect_gt(s[["n_allocs"]], 0)
  expect_gt(s[["peak"]], 0)
})

test_that("switching the fake GPU off puts the default device back on the CPU", {
  was <- rkeras:::rk_fake_gpu(TRUE)
  old <- rk_config$backend_set
  on.exit({
    rk_config$backend_set <- old
    rkeras:::rk_fake_gpu(was)
    if (was) rk_set_default_device("cuda")
  }, add = TRUE)
  config_set_backend("cuda")
  expect_identical(rk_default_device(), "cuda:0")
  expect_identical(gpu_info()$name, "rkeras fake GPU (host memory, for tests)")
  expect_true(rkeras:::rk_fake_gpu(FALSE))  # the previous state
  expect_identical(rk_default_device(), "cpu")
  expect_identical(gpu_available(), isTRUE(attr(gpu_info(), "cuda_built")) && nrow(gpu_info()) > 0L)
  expect_false(rkeras:::rk_fake_gpu_on())
})

test_that("a CTC loss trains on the (fake) GPU with the CPU's numbers (its host code gets the logits copied over)", {
  set.seed(12)
  x <- array(runif(16 * 5 * 3), c(16, 5, 3))
  y <- matrix(sample(1:3, 16 * 2, replace = TRUE), 16)
  run <- function() {
    set.seed(13)
    m <- keras_model_sequential(input_shape = c(5, 3)) |> layer_dense(4)
    m |> compile(optimizer = optimizer_sgd(learning_rate = 0.1), loss = loss_ctc())
    h <- fit(m, x, y, epochs = 2, batch_size = 8, shuffle = FALSE, verbose = 0)
    list(loss = h$metrics$loss, w = get_weights(m), eval = evaluate(m, x, y, verbose = 0))
  }
  cpu <- with_backend("cpu", run())
  local_fake_gpu()
  expect_identical(run(), cpu)
})

test_that("fit() uploads its data to the (fake) GPU once, not once per epoch", {
  local_fake_gpu()
  set.seed(14)
  x <- matrix(runif(2000 * 32), ncol = 32)
  y <- runif(2000)
  data_bytes <- 4 * (length(x) + length(y))
  uploaded <- function(epochs) {
    set.seed(15)
    m <- keras_model_sequential(input_shape = 32) |> layer_dense(4) |> layer_dense(1)
    m |> compile(optimizer = "sgd", loss = "mse")
    rk_fake_gpu_transfers(reset = TRUE)
    fit(m, x, y, epochs = epochs, batch_size = 100, verbose = 0)
    rk_fake_gpu_transfers(reset = TRUE)
  }
  one <- uploaded(1)
  five <- uploaded(5)
  expect_gte(one[["h2d_bytes"]], data_bytes)
  # Four more epochs move only per-step bookkeeping (batch indices, scalars), not the data again.
  expect_lt(five[["h2d_bytes"]] - one[["h2d_bytes"]], data_bytes / 4)
  expect_lt(five[["d2h_bytes"]] - one[["d2h_bytes"]], data_bytes / 4)
})

test_that("data too big for the (fake) GPU's free memory stay on the host and go over batch by batch", {
  set.seed(16)
  x <- matrix(runif(5000 * 256), ncol = 256)  # 5.1 MB as float32: over half of an 8 MiB GPU
  y <- runif(5000)
  run <- function() {
    set.seed(17)
    m <- keras_model_sequential(input_shape = 256) |> layer_dense(2) |> layer_dense(1)
    m |> compile(optimizer = "sgd", loss = "mse")
    h <- fit(m, x, y, epochs = 2, batch_size = 500, shuffle = FALSE, verbose = 0)
    list(loss = h$metrics$loss, w = get_weights(m))
  }
  cpu <- with_backend("cpu", run())
  local_fake_gpu()
  old_capacity <- rk_fake_gpu_set_capacity(8 * 1024^2)
  on.exit(rk_fake_gpu_set_capacity(old_capacity), add = TRUE)
  gpu_empty_cache()
  rk_fake_gpu_transfers(reset = TRUE)
  expect_identical(run(), cpu)
  # Each epoch sends every batch: twice the data in all (the uploaded-once path would send it once).
  expect_gte(rk_fake_gpu_transfers(reset = TRUE)[["h2d_bytes"]], 2 * 4 * length(x))
})

test_that("with a usable GPU and no request for the CPU, the default device follows config_backend() as at load", {
  local_fake_gpu()
  rk_config$backend_set <- NULL
  old_env <- Sys.getenv("KERAS_BACKEND", NA)
  on.exit(if (is.na(old_env)) Sys.unsetenv("KERAS_BACKEND") else Sys.setenv(KERAS_BACKEND = old_env), add = TRUE)
  rk_set_default_device("cpu")
  # What .onLoad does when rk_cuda_available(). A Python backend name means "best available".
  Sys.setenv(KERAS_BACKEND = "tensorflow")
  rkeras:::rk_sync_default_device()
  expect_identical(config_backend(), "cuda")
  expect_identical(rk_default_device(), "cuda:0")
  Sys.setenv(KERAS_BACKEND = "cpu")
  rkeras:::rk_sync_default_device()
  expect_identical(config_backend(), "cpu")
  expect_identical(rk_default_device(), "cpu")
})
