# GPU queries. On machines without a usable GPU (CPU-only builds, no driver, no device) these
# check the reporting; the GPU-only parts skip with the reason.

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

# Puts the engine back on the CPU and the session's backend request back to `old` (a bare
# config_backend() would not do: it may say "cuda" on a GPU when nothing was requested).
restore_backend <- function(old) {
  config_set_backend("cpu")
  rk_config$backend_set <- old
}

# Trains `build()`'s model for one epoch (no shuffling, fixed seed) on the given backend and
# returns the weights and predictions as R arrays. The backend is put back afterwards.
gpu_train_one_epoch <- function(backend, build, x, y, loss) {
  old <- rk_config$backend_set
  on.exit(restore_backend(old), add = TRUE)
  config_set_backend(backend)
  set.seed(7)
  m <- build()
  m |> compile(optimizer = optimizer_sgd(learning_rate = 0.05), loss = loss)
  h <- fit(m, x, y, epochs = 1, batch_size = 16, shuffle = FALSE, verbose = 0)
  list(w = get_weights(m), p = predict(m, x, verbose = 0), loss = h$metrics$loss)
}

expect_backend_parity <- function(build, x, y, loss, tol) {
  cpu <- gpu_train_one_epoch("cpu", build, x, y, loss)
  gpu <- gpu_train_one_epoch("cuda", build, x, y, loss)
  expect_identical(rk_default_device(), "cpu")
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
  old <- rk_config$backend_set
  on.exit(restore_backend(old), add = TRUE)
  config_set_backend("cuda")
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
  expect_backend_parity(build, x, y, "sparse_categorical_crossentropy", tol = 1e-4)
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
  expect_backend_parity(build, x, y, "sparse_categorical_crossentropy", tol = 1e-4)
})

test_that("running out of GPU memory is a classed error with the allocator's figures, and the model survives", {
  skip_if_not(gpu_available(), gpu_skip_reason())
  old <- rk_config$backend_set
  on.exit(restore_backend(old), add = TRUE)
  config_set_backend("cuda")
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
