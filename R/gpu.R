# NVIDIA GPUs through the engine's CUDA backend: availability, device properties, the CUDA
# allocator's memory statistics and TF32. Everything here works in CPU-only builds and on
# machines without a GPU or driver: it reports that instead of failing.

#' Is an NVIDIA GPU usable by rkeras?
#'
#' `TRUE` when this build of rkeras has the CUDA backend (the CUDA toolkit with
#' cuBLAS and cuDNN was found when the package was installed) and the CUDA
#' runtime sees at least one GPU with a working driver.
#'
#' @return A single logical. The reason for `FALSE` is in
#'   `attr(gpu_info(), "reason")`.
#' @seealso [gpu_info()], [gpu_memory_stats()], [config_backend()]
#' @examples
#' gpu_available()
#' @export
gpu_available <- function() {
  isTRUE(rk_cuda_status()$device_count > 0L)
}

#' The GPUs rkeras can use
#'
#' One row per CUDA device: its name, memory, compute capability and number of
#' multiprocessors, with the versions of the CUDA runtime, the driver and cuDNN.
#' As `tf$config$list_physical_devices("GPU")` in Keras returns an empty list
#' on a machine without a GPU, `gpu_info()` then returns a data frame with zero
#' rows (not an error); its attribute `"reason"` says why no GPU is usable
#' (a CPU-only build, no driver, no device), as the CUDA runtime reported it.
#'
#' @return A data frame with columns `device` (0-based ordinal), `name`,
#'   `memory_total` and `memory_free` (bytes), `compute_capability` (e.g.
#'   `"9.0"`), `multiprocessors`, `cuda_runtime`, `cuda_driver` and `cudnn`
#'   (version numbers such as 13000, 91900; 0 when absent), and the attributes
#'   `"reason"` (character, `""` when GPUs are listed) and `"cuda_built"`
#'   (whether this build has the CUDA backend).
#' @seealso [gpu_available()]
#' @examples
#' info <- gpu_info()
#' nrow(info)
#' attr(info, "reason")
#' @export
gpu_info <- function() {
  st <- rk_cuda_status()
  rows <- lapply(seq_len(st$device_count) - 1L, rk_gpu_device)
  col <- function(name, type) vapply(rows, function(r) r[[name]], type)
  n <- length(rows)
  out <- data.frame(
    device = col("device", integer(1)),
    name = col("name", character(1)),
    memory_total = col("memory_total", numeric(1)),
    memory_free = col("memory_free", numeric(1)),
    compute_capability = col("compute_capability", character(1)),
    multiprocessors = col("multiprocessors", integer(1)),
    cuda_runtime = rep(as.integer(st$runtime_version), n),
    cuda_driver = rep(as.integer(st$driver_version), n),
    cudnn = rep(as.integer(st$cudnn_version), n),
    stringsAsFactors = FALSE
  )
  attr(out, "reason") <- st$reason
  attr(out, "cuda_built") <- isTRUE(st$built)
  out
}

#' Memory statistics of the GPU allocator
#'
#' rkeras keeps freed GPU memory in a cache (as PyTorch does) because
#' `cudaMalloc` and `cudaFree` are slow and synchronise the device.
#' `gpu_memory_stats()` reports the allocator's counters for one device;
#' `gpu_empty_cache()` returns the cached blocks to the driver (for other
#' programs on the same GPU) and optionally resets the peak.
#'
#' @param device The CUDA device ordinal (0-based).
#' @param reset_peak Also set the peak back to the current usage.
#' @return `gpu_memory_stats()`: a named numeric vector: `current` (bytes in
#'   use by tensors), `peak` (highest `current` since the last reset), `cached`
#'   (bytes held free for reuse), `n_allocs` (requests) and `n_cache_hits`
#'   (requests served from the cache). `gpu_empty_cache()`: `NULL`, invisibly.
#'   Both raise an error of class `rkeras_unsupported_error` when no GPU is
#'   usable (the message says why).
#' @examples
#' if (gpu_available()) {
#'   gpu_memory_stats()
#'   gpu_empty_cache()
#' }
#' @export
gpu_memory_stats <- function(device = 0L) {
  rk_gpu_allocator_stats(rk_gpu_device_arg(device))
}

#' @rdname gpu_memory_stats
#' @export
gpu_empty_cache <- function(device = 0L, reset_peak = FALSE) {
  if (!is.logical(reset_peak) || length(reset_peak) != 1L || is.na(reset_peak))
    rkeras_abort("`reset_peak` must be TRUE or FALSE", "rkeras_value_error")
  invisible(rk_gpu_allocator_empty_cache(rk_gpu_device_arg(device), reset_peak))
}

#' TF32 in GPU matrix products
#'
#' On Ampere and newer GPUs, float32 matrix products can run on tensor cores in
#' TF32 (10-bit mantissa inputs): several times faster, with about 1e-3 relative
#' error instead of float32's 1e-7. rkeras leaves it off by default so that
#' results agree with the CPU; this switch turns it on for every device.
#'
#' @param enabled `TRUE` or `FALSE`.
#' @return The previous setting, invisibly (always `FALSE` in CPU-only builds,
#'   where the setting has no effect).
#' @examples
#' old <- config_set_gpu_tf32(FALSE)
#' config_set_gpu_tf32(old)
#' @export
config_set_gpu_tf32 <- function(enabled) {
  if (!is.logical(enabled) || length(enabled) != 1L || is.na(enabled))
    rkeras_abort("`enabled` must be TRUE or FALSE", "rkeras_value_error")
  invisible(rk_gpu_set_tf32(enabled))
}

# Validates a device ordinal and says why there is no usable GPU before the engine is asked.
rk_gpu_device_arg <- function(device) {
  if (!is.numeric(device) || length(device) != 1L || is.na(device) || device < 0 ||
      device != trunc(device))
    rkeras_abort(paste0("`device` must be a single non-negative whole number, not ",
                        rk_describe_value(device), "."), "rkeras_value_error", call = sys.call(-1))
  reason <- rk_cuda_unusable_reason(models = FALSE)
  if (!is.null(reason)) rkeras_abort(reason, "rkeras_unsupported_error", call = sys.call(-1))
  as.integer(device)
}

# NULL when the "cuda" backend can be used (a CUDA build on a machine with a usable GPU), else
# why not. `models` is kept for callers that ask about kernels only: both need the same now.
rk_cuda_unusable_reason <- function(models = TRUE) {
  st <- rk_cuda_status()
  if (isTRUE(st$fake)) return(NULL)
  if (!isTRUE(st$built)) return(paste0(st$reason, "."))
  if (st$device_count < 1L) return(paste0("CUDA requested but no usable GPU: ", st$reason, "."))
  NULL
}

# Points the engine's default device (where weights and data made from R go) at the backend
# config_backend() resolves to. Models built before a switch keep their device.
rk_sync_default_device <- function() {
  rk_set_default_device(config_backend())
  invisible(NULL)
}

# TESTING ONLY: the fake GPU. While on, cuda:0 is served by host memory and the CPU kernels
# (src/backend/fake), so machines without a GPU (CI) run everything above the CUDA kernels on
# "the GPU": weights and data placed on cuda:0, results copied back to R, no host reads of device
# memory, no op mixing CPU and GPU tensors, out-of-memory errors. gpu_available() is then TRUE and
# gpu_info() lists "rkeras fake GPU (host memory, for tests)". It is never on by default: the
# environment variable RKERAS_FAKE_GPU=1 at package load switches it on (and makes cuda:0 the
# default device unless KERAS_BACKEND=cpu), as `make test-fake-gpu` does for the whole test suite;
# tests toggle it with rk_fake_gpu(). `capacity`: the fake GPU's memory in bytes (default 2 GiB),
# beyond which allocations fail like a full GPU. Turning it off puts the default device back on
# the CPU. Returns the previous state, invisibly.
rk_fake_gpu <- function(on = TRUE, capacity = NULL) {
  if (!is.null(capacity)) rk_fake_gpu_set_capacity(capacity)
  invisible(rk_fake_gpu_enable(on))
}

# Whether the fake GPU (above) serves cuda:0 now.
rk_fake_gpu_on <- function() isTRUE(rk_cuda_status()$fake)

# At package load: RKERAS_FAKE_GPU=1 switches the fake GPU on (see rk_fake_gpu()).
rk_fake_gpu_from_env <- function() {
  if (!identical(Sys.getenv("RKERAS_FAKE_GPU", ""), "1")) return(invisible(FALSE))
  rk_fake_gpu_enable(TRUE)
  rk_set_default_device(if (identical(tolower(Sys.getenv("KERAS_BACKEND", "")), "cpu")) "cpu" else "cuda")
  invisible(TRUE)
}
