# Regularizers: penalties against base R, resolution, configs and the engine spec.

pen <- function(reg, x) as.vector(as.array(reg(x)))

test_that("constructors have keras3's signatures and defaults", {
  expect_identical(formals(regularizer_l1), as.pairlist(alist(l1 = 0.01)))
  expect_identical(formals(regularizer_l2), as.pairlist(alist(l2 = 0.01)))
  expect_identical(formals(regularizer_l1_l2), as.pairlist(alist(l1 = 0, l2 = 0)))
  expect_identical(formals(regularizer_orthogonal), as.pairlist(alist(factor = 0.01, mode = "rows")))
})

test_that("L1, L2 and L1L2 penalties match base R", {
  set.seed(1)
  w <- matrix(rnorm(60), 12, 5)
  expect_equal(pen(regularizer_l1(0.3), w), 0.3 * sum(abs(w)), tolerance = 1e-12)
  expect_equal(pen(regularizer_l2(0.2), w), 0.2 * sum(w^2), tolerance = 1e-12)
  expect_equal(pen(regularizer_l1_l2(l1 = 0.1, l2 = 0.05), w), 0.1 * sum(abs(w)) + 0.05 * sum(w^2), tolerance = 1e-12)
  expect_equal(pen(regularizer_l1_l2(), w), 0)
  expect_equal(pen(regularizer_l1(), w), 0.01 * sum(abs(w)), tolerance = 1e-12)
  expect_equal(pen(regularizer_l2(), c(1, 2, 3)), 0.14, tolerance = 1e-12)
  # the result is a scalar tensor of the weight's dtype
  p <- regularizer_l2(0.5)(rk_tensor(w, dtype = "float32"))
  expect_s3_class(p, "rkeras_tensor")
  expect_identical(dim(p), integer())
  expect_identical(rkeras:::rk_tensor_dtype(p), "float32")
  expect_equal(as.vector(as.array(p)), 0.5 * sum(w^2), tolerance = 1e-6)
  expect_error(regularizer_l2()("a"), class = "rkeras_type_error")
})

test_that("the penalty is differentiable through the engine", {
  w <- rk_tensor(c(1, -2, 3), requires_grad = TRUE)
  rk_backward(regularizer_l1_l2(l1 = 0.1, l2 = 0.5)(w))
  expect_equal(as.vector(as.array(rk_grad(w))), 0.1 * sign(c(1, -2, 3)) + 0.5 * 2 * c(1, -2, 3), tolerance = 1e-12)
})

test_that("the orthogonal penalty matches Keras's formula", {
  ref <- function(x, factor, mode) {
    eps <- config_epsilon()
    if (mode == "columns") x <- t(x)
    v <- x / sqrt(pmax(rowSums(x^2), eps^2))
    p <- tcrossprod(v)
    k <- nrow(x)
    factor * 0.5 * sum(abs(p[row(p) != col(p)])) / (k * (k - 1) / 2)
  }
  set.seed(2)
  w <- matrix(rnorm(24), 6, 4)
  expect_equal(pen(regularizer_orthogonal(0.3), w), ref(w, 0.3, "rows"), tolerance = 1e-10)
  expect_equal(pen(regularizer_orthogonal(0.3, mode = "columns"), w), ref(w, 0.3, "columns"), tolerance = 1e-10)
  expect_equal(pen(regularizer_orthogonal(), diag(3)), 0)
  expect_equal(pen(regularizer_orthogonal(1), matrix(1, 2, 2)), 1, tolerance = 1e-12)  # 0.5 * (1 + 1) / 1 pair
  # a zero row stays finite (the norm is clamped at epsilon)
  w[1, ] <- 0
  expect_equal(pen(regularizer_orthogonal(0.3), w), ref(w, 0.3, "rows"), tolerance = 1e-10)
  expect_error(regularizer_orthogonal()(c(1, 2, 3)), class = "rkeras_shape_error")
  expect_error(regularizer_orthogonal()(array(1, c(2, 2, 2))), "must have rank 2")
  expect_error(regularizer_orthogonal(mode = "cols"), "`mode` must be one of \"rows\", \"columns\"")
})

test_that("arguments are validated as Keras does", {
  expect_error(regularizer_l1(-1), class = "rkeras_value_error")
  expect_error(regularizer_l1(-1), "invalid value for argument `l1`: expected a non-negative number")
  expect_error(regularizer_l2(Inf), class = "rkeras_value_error")
  expect_error(regularizer_l1_l2(l2 = NA), class = "rkeras_value_error")
  expect_error(regularizer_l2("0.1"), class = "rkeras_value_error")
  expect_error(regularizer_orthogonal(factor = -0.1), class = "rkeras_value_error")
  # NULL means the default, as in Keras
  expect_identical(regularizer_l1(NULL)$l1, 0.01)
  expect_identical(regularizer_l1_l2(NULL, NULL)$get_config(), list(l1 = 0, l2 = 0))
})

test_that("strings, objects, configs and functions resolve as Keras resolves them", {
  get <- rkeras:::rk_get_regularizer
  expect_identical(get("l1")$get_config(), list(l1 = 0.01))
  expect_identical(get("L1")$class_name, "L1")
  expect_identical(get("l2")$get_config(), list(l2 = 0.01))
  expect_identical(get("L2")$class_name, "L2")
  expect_identical(get("l1l2")$get_config(), list(l1 = 0, l2 = 0))
  expect_identical(get("L1L2")$class_name, "L1L2")
  expect_identical(get("orthogonal_regularizer")$get_config(), list(factor = 0.01, mode = "rows"))
  expect_identical(get("OrthogonalRegularizer")$class_name, "OrthogonalRegularizer")
  expect_null(get(NULL))
  r <- regularizer_l2(0.3)
  expect_identical(get(r), r)
  f <- function(x) 0.1 * sum(abs(x))
  expect_identical(get(f), f)
  expect_error(get("l3"), class = "rkeras_value_error")
  expect_error(get("l3"), "unknown regularizer \"l3\"; expected one of .*\"l2\"")
  expect_error(get("L1_L2"), "case-sensitive")
  expect_error(get(0.01), class = "rkeras_type_error")
  expect_error(get(initializer_zeros()), class = "rkeras_type_error")
  back <- get(list(module = "keras.regularizers", class_name = "L1L2", config = list(l1 = 0.5, l2 = 0.25),
                   registered_name = NULL))
  expect_identical(back$get_config(), list(l1 = 0.5, l2 = 0.25))
  expect_error(get(list(class_name = "L2", config = list(l1 = 1))), "unknown config field")
})

test_that("configs serialise as Keras 3", {
  expect_identical(rkeras:::rk_obj_config(regularizer_l2(0.02)),
                   list(module = "keras.regularizers", class_name = "L2", config = list(l2 = 0.02),
                        registered_name = NULL))
  expect_identical(regularizer_l1_l2(0.1, 0.2)$get_config(), list(l1 = 0.1, l2 = 0.2))
  expect_identical(regularizer_orthogonal(0.5, "columns")$get_config(), list(factor = 0.5, mode = "columns"))
  expect_s3_class(regularizer_l1(),
                  c("keras.src.regularizers.regularizers.L1", "keras.src.regularizers.regularizers.Regularizer",
                    "rkeras_regularizer", "function"), exact = TRUE)
  expect_output(print(regularizer_l1_l2(0.1, 0.2)), "L1L2\\(l1 = 0.1, l2 = 0.2\\)")
  expect_identical(regularizer_l2(0.7)$clone()$l2, 0.7)
})

test_that("the engine spec gives the L1/L2 factors", {
  spec <- rkeras:::rk_regularizer_spec
  expect_identical(spec(regularizer_l1(0.3)), list(l1 = 0.3, l2 = 0))
  expect_identical(spec(regularizer_l2(0.2)), list(l1 = 0, l2 = 0.2))
  expect_identical(spec(regularizer_l1_l2(0.1, 0.4)), list(l1 = 0.1, l2 = 0.4))
  expect_identical(spec("l2"), list(l1 = 0, l2 = 0.01))
  expect_null(spec(NULL))
  expect_error(spec(regularizer_orthogonal()), class = "rkeras_unsupported_error")
  expect_error(spec(regularizer_orthogonal()), "OrthogonalRegularizer is not supported yet")
  expect_error(spec(function(x) sum(x)), class = "rkeras_unsupported_error")
})
