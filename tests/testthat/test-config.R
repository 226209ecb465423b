# Engine configuration from R: threads, SIMD level, seeds, allocator statistics.

test_that("the thread count round-trips and defaults to the cores", {
  old <- config_num_threads()
  on.exit(config_set_num_threads(old), add = TRUE)
  expect_true(is.integer(old) && old >= 1L)
  prev <- config_set_num_threads(1)
  expect_identical(prev, old)
  expect_identical(config_num_threads(), 1L)
  config_set_num_threads(2L)
  expect_identical(config_num_threads(), 2L)
  config_set_num_threads()
  expect_identical(config_num_threads(), rk_cores())
  expect_error(config_set_num_threads(0), class = "rkeras_value_error")
  expect_error(config_set_num_threads(1.5), class = "rkeras_value_error")
  expect_error(config_set_num_threads("2"), class = "rkeras_value_error")
})

test_that("results do not depend on the thread count", {
  old <- config_num_threads()
  on.exit(config_set_num_threads(old), add = TRUE)
  set.seed(1)
  a <- matrix(rnorm(300 * 200), 300, 200)
  b <- matrix(rnorm(200 * 100), 200, 100)
  config_set_num_threads(1)
  r1 <- as.array(rkeras:::rk_matmul(a, b))
  s1 <- as.array(rkeras:::rk_sum(rkeras:::rk_exp(a / 10), axis = 2))
  config_set_num_threads(2)
  r2 <- as.array(rkeras:::rk_matmul(a, b))
  s2 <- as.array(rkeras:::rk_sum(rkeras:::rk_exp(a / 10), axis = 2))
  expect_equal(r1, a %*% b)
  expect_equal(r2, a %*% b)
  expect_equal(s1, s2)
})

test_that("the SIMD level is one of the known names", {
  expect_true(config_simd_level() %in% c("portable", "avx2", "avx512"))
})

test_that("set_random_seed() and set.seed() make random ops reproducible", {
  set_random_seed(123)
  r1 <- runif(1)
  u1 <- as.array(rk_random_uniform(c(4, 5)))
  n1 <- as.array(rk_random_normal(10, dtype = "float64"))
  set_random_seed(123)
  expect_identical(runif(1), r1)
  expect_identical(as.array(rk_random_uniform(c(4, 5))), u1)
  expect_identical(as.array(rk_random_normal(10, dtype = "float64")), n1)
  set_random_seed(124)
  expect_false(identical(as.array(rk_random_uniform(c(4, 5))), u1))
  set.seed(9)
  d1 <- as.array(rk_dropout(rk_ones(c(10, 10)), 0.5))
  set.seed(9)
  expect_identical(as.array(rk_dropout(rk_ones(c(10, 10)), 0.5)), d1)
  set_random_seed(2^40)  # seeds beyond R's integer range are accepted
  expect_error(set_random_seed(-1), class = "rkeras_value_error")
  expect_error(set_random_seed(NA), class = "rkeras_value_error")
})

test_that("allocator statistics track tensors, and a limit gives rkeras_memory_error", {
  on.exit(rk_memory_set_limit(0), add = TRUE)
  # The CPU allocator's counters: tensors made from R must land on the CPU even when a (fake) GPU
  # is the default device.
  device <- rk_default_device()
  rk_set_default_device("cpu")
  on.exit(rk_set_default_device(if (startsWith(device, "cuda")) "cuda" else "cpu"), add = TRUE)
  gc()
  s0 <- rk_memory_stats()
  expect_named(s0, c("current", "peak", "cached", "n_allocs", "n_cache_hits"))
  big <- rk_zeros(c(1000, 1000), "float64")  # 8 MB
  s1 <- rk_memory_stats()
  expect_gte(s1[["current"]] - s0[["current"]], 8e6)
  expect_gte(s1[["peak"]], s1[["current"]])
  expect_gt(s1[["n_allocs"]], s0[["n_allocs"]])
  rm(big)
  gc()
  s2 <- rk_memory_stats()
  expect_lt(s2[["current"]], s1[["current"]])
  expect_gte(s2[["cached"]], 8e6)  # the freed block stays cached for reuse
  rk_memory_empty_cache()
  expect_identical(rk_memory_stats()[["cached"]], 0)
  rk_memory_reset_peak()
  expect_identical(rk_memory_stats()[["peak"]], rk_memory_stats()[["current"]])

  rk_memory_set_limit(rk_memory_stats()[["current"]] + 4e6)
  err <- tryCatch(rk_zeros(c(1000, 1000), "float64"), error = function(e) e)
  expect_s3_class(err, "rkeras_memory_error")
  expect_match(conditionMessage(err), "out of memory")
  expect_equal(as.array(rk_ones(3) * 2), array(2, 3L))  # small allocations still work
  rk_memory_set_limit(0)
  expect_identical(dim(rk_zeros(c(1000, 1000), "float64")), c(1000L, 1000L))
  expect_error(rk_memory_set_limit(-1), class = "rkeras_value_error")
})

test_that("out of memory runs R's GC first, which frees unreachable tensors", {
  on.exit(rk_memory_set_limit(0), add = TRUE)
  gc()
  rk_memory_empty_cache()
  base <- rk_memory_stats()[["current"]]
  a <- rk_zeros(c(1000, 1000), "float64")
  rk_memory_set_limit(base + 12e6)  # room for one 8 MB tensor, not two
  rm(a)  # unreachable, but freed only when R's GC runs
  rk_memory_empty_cache()
  b <- rk_zeros(c(1000, 1000), "float64")
  expect_identical(dim(b), c(1000L, 1000L))
})
