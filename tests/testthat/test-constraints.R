# Constraints: values against base R formulas, axes, resolution, configs, engine spec.

con_val <- function(con, w) as.array(con(w))

test_that("constructors have keras3's signatures and defaults", {
  expect_identical(formals(constraint_maxnorm), as.pairlist(alist(max_value = 2L, axis = 1L)))
  expect_identical(formals(constraint_minmaxnorm), as.pairlist(alist(min_value = 0, max_value = 1, rate = 1, axis = 1L)))
  expect_null(formals(constraint_nonneg))
  expect_identical(formals(constraint_unitnorm), as.pairlist(alist(axis = 1L)))
})

test_that("max_norm matches base R along 1-based axes", {
  eps <- config_epsilon()
  set.seed(1)
  w <- matrix(rnorm(20, sd = 2), 4, 5)
  n <- sqrt(colSums(w^2))  # axis = 1: the norm of each column (incoming weights of a unit)
  expect_equal(con_val(constraint_maxnorm(1.5), w), sweep(w, 2, pmin(n, 1.5) / (eps + n), "*"), tolerance = 1e-12)
  n2 <- sqrt(rowSums(w^2))
  expect_equal(con_val(constraint_maxnorm(1.5, axis = 2), w), sweep(w, 1, pmin(n2, 1.5) / (eps + n2), "*"),
               tolerance = 1e-12)
  expect_equal(con_val(constraint_maxnorm(1.5, axis = -1), w), con_val(constraint_maxnorm(1.5, axis = 2), w))
  # conv kernel (kh, kw, in, out): axis = c(1, 2, 3) constrains each filter
  k <- array(rnorm(3 * 3 * 2 * 4), c(3, 3, 2, 4))
  nk <- sqrt(apply(k^2, 4, sum))
  expect_equal(con_val(constraint_maxnorm(2, axis = c(1, 2, 3)), k),
               sweep(k, 4, pmin(nk, 2) / (eps + nk), "*"), tolerance = 1e-12)
  # small columns are untouched (up to epsilon)
  small <- matrix(c(0.3, 0.4, 0.03, 0.04), 2)
  expect_equal(con_val(constraint_maxnorm(), small), small, tolerance = 1e-6)
  # a bias vector: the norm of the whole vector
  b <- c(3, 4)
  expect_equal(as.vector(con_val(constraint_maxnorm(1), b)), b / (5 + eps), tolerance = 1e-12)
  expect_error(con_val(constraint_maxnorm(axis = 3), w), class = "rkeras_index_error")
})

test_that("min_max_norm, unit_norm and non_neg match base R", {
  eps <- config_epsilon()
  set.seed(2)
  w <- matrix(rnorm(30), 5, 6)
  n <- sqrt(colSums(w^2))
  desired <- 0.7 * pmin(pmax(n, 1.2), 1.6) + 0.3 * n
  expect_equal(con_val(constraint_minmaxnorm(1.2, 1.6, rate = 0.7), w),
               sweep(w, 2, desired / (eps + n), "*"), tolerance = 1e-12)
  out <- con_val(constraint_minmaxnorm(1, 2), w)
  expect_true(all(sqrt(colSums(out^2)) >= 1 - 1e-6 & sqrt(colSums(out^2)) <= 2 + 1e-6))

  expect_equal(con_val(constraint_unitnorm(), w), sweep(w, 2, eps + n, "/"), tolerance = 1e-12)
  n2 <- sqrt(rowSums(w^2))
  expect_equal(con_val(constraint_unitnorm(axis = 2), w), sweep(w, 1, eps + n2, "/"), tolerance = 1e-12)

  expect_identical(con_val(constraint_nonneg(), w), pmax(w, 0))
  # float32 tensors stay float32
  v <- constraint_nonneg()(rk_tensor(w, dtype = "float32"))
  expect_identical(rkeras:::rk_tensor_dtype(v), "float32")
  expect_error(constraint_nonneg()("a"), class = "rkeras_type_error")
})

test_that("arguments are validated", {
  expect_error(constraint_maxnorm(-1), class = "rkeras_value_error")
  expect_error(constraint_maxnorm(axis = 0), class = "rkeras_value_error")
  expect_error(constraint_maxnorm(axis = 0), "1-based")
  expect_error(constraint_unitnorm(axis = 1.5), class = "rkeras_value_error")
  expect_error(constraint_minmaxnorm(min_value = 2, max_value = 1), "must not be smaller")
  expect_error(constraint_minmaxnorm(rate = NA), class = "rkeras_value_error")
})

test_that("strings, objects, configs and functions resolve as Keras resolves them", {
  get <- rkeras:::rk_get_constraint
  expect_identical(get("max_norm")$get_config(), list(max_value = 2, axis = 0L))
  expect_identical(get("MaxNorm")$class_name, "MaxNorm")
  expect_identical(get("min_max_norm")$get_config(), list(min_value = 0, max_value = 1, rate = 1, axis = 0L))
  expect_identical(get("MinMaxNorm")$class_name, "MinMaxNorm")
  expect_identical(get("non_neg")$class_name, "NonNeg")
  expect_identical(get("NonNeg")$class_name, "NonNeg")
  expect_identical(get("unit_norm")$get_config(), list(axis = 0L))
  expect_identical(get("UnitNorm")$class_name, "UnitNorm")
  expect_null(get(NULL))
  con <- constraint_unitnorm()
  expect_identical(get(con), con)
  f <- function(w) w / 2
  expect_identical(get(f), f)
  expect_error(get("maxnorm"), class = "rkeras_value_error")
  expect_error(get("maxnorm"), "unknown constraint \"maxnorm\"; expected one of .*\"max_norm\"")
  expect_error(get(1), class = "rkeras_type_error")
  expect_error(get(regularizer_l1()), class = "rkeras_type_error")
  # a Keras config holds 0-based axes
  back <- get(list(module = "keras.constraints", class_name = "MaxNorm",
                   config = list(max_value = 3, axis = list(0L, 1L, 2L)), registered_name = NULL))
  expect_identical(back$get_config(), list(max_value = 3, axis = c(0L, 1L, 2L)))
  k <- array(1, c(2, 2, 2, 3))
  expect_identical(con_val(back, k), con_val(constraint_maxnorm(3, axis = c(1, 2, 3)), k))
  expect_identical(get(list(class_name = "UnitNorm", config = list(axis = -1L)))$get_config(), list(axis = -1L))
})

test_that("configs serialise as Keras 3", {
  expect_identical(rkeras:::rk_obj_config(constraint_maxnorm(3, axis = 2)),
                   list(module = "keras.constraints", class_name = "MaxNorm",
                        config = list(max_value = 3, axis = 1L), registered_name = NULL))
  expect_identical(constraint_minmaxnorm(0.5, 2, 0.9, axis = c(1, 2))$get_config(),
                   list(min_value = 0.5, max_value = 2, rate = 0.9, axis = c(0L, 1L)))
  expect_length(constraint_nonneg()$get_config(), 0L)
  expect_identical(constraint_unitnorm(axis = -1)$axis, -1L)
  expect_identical(constraint_maxnorm(3, axis = 2)$clone()$get_config(), list(max_value = 3, axis = 1L))
  expect_s3_class(constraint_nonneg(),
                  c("keras.src.constraints.constraints.NonNeg", "keras.src.constraints.constraints.Constraint",
                    "rkeras_constraint", "function"), exact = TRUE)
  expect_output(print(constraint_maxnorm()), "MaxNorm\\(max_value = 2, axis = 0\\)")
})

test_that("the engine spec has 0-based axes", {
  spec <- rkeras:::rk_constraint_spec
  expect_identical(spec(constraint_maxnorm(3)), list(kind = "max_norm", attrs = list(max_value = 3, axis = 0L)))
  expect_identical(spec(constraint_maxnorm(3, axis = c(1, 2, 3))),
                   list(kind = "max_norm", attrs = list(max_value = 3, axis = c(0L, 1L, 2L))))
  expect_identical(spec(constraint_minmaxnorm(0.5, 2, 0.9, axis = 2)),
                   list(kind = "min_max_norm", attrs = list(min_value = 0.5, max_value = 2, rate = 0.9, axis = 1L)))
  expect_identical(spec("non_neg"), list(kind = "non_neg", attrs = list()))
  expect_identical(spec(constraint_unitnorm(axis = -1)), list(kind = "unit_norm", attrs = list(axis = -1L)))
  f <- function(w) pmax(w, 0)
  expect_identical(spec(f), list(kind = "r_function", attrs = list(), fn = f))
  expect_null(spec(NULL))
})
