# Engine configuration: CPU threads, SIMD level, random seed, memory statistics.

#' Number of CPU threads the engine uses
#'
#' The engine runs its CPU kernels on one OpenMP thread pool. By default it uses
#' all cores of the machine; the `OMP_NUM_THREADS` environment variable, read when
#' the package is loaded, sets another default.
#'
#' @return `config_num_threads()`: the number of threads, an integer.
#' @seealso [config_simd_level()]
#' @examples
#' config_num_threads()
#' old <- config_set_num_threads(1)
#' config_num_threads()
#' config_set_num_threads(old)
#' @export
config_num_threads <- function() rk_threads_get()

#' @rdname config_num_threads
#' @param n Number of threads (a positive whole number); `NULL` means all cores.
#' @return `config_set_num_threads()`: the previous number of threads, invisibly.
#' @export
config_set_num_threads <- function(n = NULL) {
  if (is.null(n)) n <- rk_cores()
  if (!is.numeric(n) || length(n) != 1L || is.na(n) || n < 1 || n != trunc(n) || n > .Machine$integer.max)
    rk_abort("`n` must be a single positive whole number of threads", "rkeras_value_error")
  invisible(rk_threads_set(as.integer(n)))
}

#' SIMD instruction set of the CPU kernels
#'
#' The engine's hot kernels (matrix products, elementwise functions) are compiled for
#' several instruction sets and one is chosen when the package loads, from what the
#' CPU supports. Setting the environment variable `RKERAS_SIMD` to `portable`, `avx2`
#' or `avx512` before loading lowers the choice (for testing and benchmarking).
#'
#' @return The active level: `"portable"`, `"avx2"` or `"avx512"`.
#' @examples
#' config_simd_level()
#' @export
config_simd_level <- function() rk_simd_level()

#' Set the random seed of R and of the engine
#'
#' Seeds R's random number generator with [set.seed()] and the engine's own
#' generator, so that weight initialisation, shuffling, dropout and random tensors
#' are reproducible. (Random operations also draw their engine seed from R's
#' generator, so `set.seed()` alone makes them reproducible too.)
#'
#' @param seed A single non-negative whole number.
#' @return `NULL`, invisibly.
#' @examples
#' set_random_seed(42)
#' a <- runif(1)
#' set_random_seed(42)
#' identical(a, runif(1))
#' @export
set_random_seed <- function(seed) {
  if (!is.numeric(seed) || length(seed) != 1L || is.na(seed) || seed < 0 || seed != trunc(seed))
    rk_abort("`seed` must be a single non-negative whole number", "rkeras_value_error")
  # set.seed() takes an integer; larger seeds are folded into its range.
  set.seed(as.integer(seed %% .Machine$integer.max))
  rk_engine_seed(as.numeric(seed))
  invisible(NULL)
}

# ---- memory statistics of the CPU allocator (internal) ---------------------------------

# Named numeric vector: current, peak, cached (bytes), n_allocs, n_cache_hits.
rk_memory_stats <- function() rk_allocator_stats()

# Returns the cached free blocks to the system.
rk_memory_empty_cache <- function() invisible(rk_allocator_empty_cache())

# Sets the peak back to the current usage.
rk_memory_reset_peak <- function() invisible(rk_allocator_reset_peak())

# Caps the allocator at `bytes` (0 removes the cap); allocations beyond it fail with
# rkeras_memory_error after an R garbage collection, as a real out-of-memory would.
rk_memory_set_limit <- function(bytes = 0) {
  if (!is.numeric(bytes) || length(bytes) != 1L || is.na(bytes) || bytes < 0)
    rk_abort("`bytes` must be a single non-negative number", "rkeras_value_error")
  invisible(rk_allocator_set_limit(as.numeric(bytes)))
}
