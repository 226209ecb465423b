# The R tensor type: conversion, printing, group generics, autograd from R, errors.

shapes_rank0_to_5 <- list(NULL, 5L, c(2L, 3L), c(2L, 3L, 4L), c(3L, 1L, 2L, 2L), c(2L, 2L, 1L, 3L, 2L))

make_array <- function(values, dim) {
  if (is.null(dim)) return(values[1L])
  array(rep_len(values, prod(dim)), dim)
}

expected_back <- function(x) {
  # rank 0 comes back as a plain length-1 vector; rank >= 1 as an array with dim
  if (is.null(dim(x)) && length(x) == 1L) x else array(x, dim = if (is.null(dim(x))) length(x) else dim(x))
}

test_that("double arrays of rank 0 to 5 round-trip exactly, special values included", {
  specials <- c(NaN, Inf, -Inf, -0, 0, .Machine$double.xmax, .Machine$double.xmin, 5e-324, pi, -1 / 3)
  for (d in shapes_rank0_to_5) {
    x <- make_array(c(specials, seq(-2.5, 7.25, length.out = 40)), d)
    t <- rk_tensor(x)
    expect_identical(rk_tensor_dtype(t), "float64")
    expect_identical(dim(t), if (is.null(d)) integer() else d)
    back <- as.array(t)
    expect_identical(back, expected_back(x))
    # identical() does not see the sign of zero; the reciprocal does
    expect_identical(1 / back, 1 / expected_back(x))
  }
  # a plain vector (no dim) becomes rank 1 and comes back as a 1-d array
  v <- c(1.5, -2, NaN)
  expect_identical(dim(rk_tensor(v)), 3L)
  expect_identical(as.array(rk_tensor(v)), array(v, 3L))
})

test_that("integer arrays of rank 0 to 5 round-trip exactly", {
  ints <- c(.Machine$integer.max, -.Machine$integer.max, 0L, -1L, 1L, 42L, seq_len(30L))
  for (d in shapes_rank0_to_5) {
    x <- make_array(ints, d)
    t <- rk_tensor(x)
    expect_identical(rk_tensor_dtype(t), "int32")
    expect_identical(as.array(t), expected_back(x))
  }
})

test_that("logical arrays of rank 0 to 5 round-trip exactly", {
  for (d in shapes_rank0_to_5) {
    x <- make_array(c(TRUE, FALSE, FALSE, TRUE, TRUE, FALSE, TRUE), d)
    t <- rk_tensor(x)
    expect_identical(rk_tensor_dtype(t), "bool")
    expect_identical(as.array(t), expected_back(x))
  }
})

test_that("empty arrays and rank 8 round-trip; rank 9 is a shape error", {
  x0 <- matrix(numeric(0), 0, 3)
  expect_identical(as.array(rk_tensor(x0)), x0)
  expect_identical(as.array(rk_tensor(integer(0))), array(integer(0), 0L))
  x8 <- array(1:256, rep(2L, 8))
  expect_identical(as.array(rk_tensor(x8)), x8)
  expect_error(rk_tensor(array(1, rep(1, 9))), "rank <= 8", class = "rkeras_shape_error")
})

test_that("the value at an R index is the tensor element at the same index", {
  set.seed(1)
  x <- array(rnorm(2 * 3 * 4), c(2, 3, 4))
  t <- rk_tensor(x)
  for (i in 1:2) for (j in 1:3) for (k in 1:4) {
    expect_identical(as.array(rk_slice(t, c(i, j, k), c(1, 1, 1)))[1], x[i, j, k])
  }
  # inside, the tensor is row-major: flattening it reads the last index fastest
  expect_identical(as.vector(as.array(rk_reshape(t, -1))), as.vector(aperm(x)))
  m <- matrix(1:6, 2)
  expect_identical(as.vector(as.array(rk_reshape(rk_tensor(m), -1))), c(1L, 3L, 5L, 2L, 4L, 6L))
})

test_that("dtype = float32 rounds to single precision and converts back to double", {
  x <- array(c(0.5, 1.25, -3, 1e10, 1 / 3, NaN, Inf, -Inf), c(2, 2, 2))
  t <- rk_tensor(x, dtype = "float32")
  expect_identical(rk_tensor_dtype(t), "float32")
  back <- as.array(t)
  expect_type(back, "double")
  expect_identical(dim(back), dim(x))
  expect_identical(back[c(1:4, 6:8)], x[c(1:4, 6:8)])  # exactly representable in float32
  expect_equal(back[5], 1 / 3, tolerance = 1e-7)
  expect_false(back[5] == 1 / 3)
  expect_identical(as.array(rk_tensor(1:4, dtype = "float32")), array(c(1, 2, 3, 4), 4L))
  expect_identical(as.array(rk_tensor(c(TRUE, FALSE), dtype = "float64")), array(c(1, 0), 2L))
  expect_identical(as.array(rk_tensor(c(0, 2.5, -1), dtype = "bool")), array(c(FALSE, TRUE, TRUE), 3L))
  expect_identical(as.array(rk_tensor(c(2.9, -2.9), dtype = "int32")), array(c(2L, -2L), 2L))
  expect_error(rk_tensor(1e10, dtype = "int32"), class = "rkeras_value_error")
  expect_error(rk_tensor(1, dtype = "float16"), class = "rkeras_value_error")
  expect_error(rk_tensor(1, dtype = 32), class = "rkeras_type_error")
})

test_that("NA is refused with a classed error naming the position; NaN and Inf are allowed", {
  expect_error(rk_tensor(c(1, 2, NA, 4)), class = "rkeras_value_error")
  expect_error(rk_tensor(c(1, 2, NA, 4)), "x contains NA at position 3; NA is not allowed in a tensor", fixed = TRUE)
  expect_error(rk_tensor(c(1L, NA_integer_)), "position 2", class = "rkeras_value_error")
  expect_error(rk_tensor(matrix(c(TRUE, NA), 1)), "position 2", class = "rkeras_value_error")
  expect_error(rk_tensor(NA), class = "rkeras_value_error")
  expect_error(rk_tensor(c(1, NA), dtype = "float32"), class = "rkeras_value_error")
  expect_identical(as.array(rk_tensor(c(NaN, Inf))), array(c(NaN, Inf), 2L))
})

test_that("non-numeric input is refused with rkeras_type_error saying what was given", {
  cases <- list(
    character = c("a", "b"),
    list = list(1, 2),
    factor = factor(c("a", "b")),
    complex = c(1 + 2i),
    data.frame = data.frame(a = 1:2),
    NULL = NULL
  )
  for (what in names(cases)) {
    err <- tryCatch(rk_tensor(cases[[what]]), error = function(e) e)
    expect_s3_class(err, "rkeras_type_error")
    expect_s3_class(err, "rkeras_error")
    expect_identical(conditionMessage(err), paste0("expected a numeric, integer or logical array, got ", what))
    expect_null(conditionCall(err))
  }
})

test_that("engine errors arrive in R with their classes and the session survives", {
  a <- rk_tensor(matrix(1, 2, 3))
  b <- rk_tensor(1:4)
  err <- tryCatch(a + b, error = function(e) e)
  expect_identical(class(err), c("rkeras_shape_error", "rkeras_error", "error", "condition"))
  expect_match(conditionMessage(err), "(2, 3)", fixed = TRUE)
  expect_match(conditionMessage(err), "(4,)", fixed = TRUE)
  expect_null(conditionCall(err))
  # a caught error leaves everything usable; repeat to shake out leaks or double frees
  for (i in 1:50) expect_error(a + b, class = "rkeras_shape_error")
  gc()
  expect_equal(as.array(a + 1), matrix(2, 2, 3))
  expect_error(rk_backward(a), class = "rkeras_autograd_error")
  expect_error(rk_tensor_to_r(1), class = "rkeras_type_error")
})

test_that("a tensor saved and reloaded is reported as invalid instead of crashing", {
  f <- tempfile(fileext = ".rds")
  on.exit(unlink(f))
  saveRDS(rk_tensor(1:3), f)
  t <- readRDS(f)
  expect_error(as.array(t), "invalid", class = "rkeras_value_error")
  expect_match(format(t), "invalid")
})

test_that("dim, length, format and print describe the tensor", {
  t <- rk_tensor(matrix(1:6, 2), dtype = "float32")
  expect_identical(dim(t), c(2L, 3L))
  expect_identical(length(t), 6L)
  expect_identical(format(t), "<rkeras_tensor shape=(2, 3) dtype=float32>")
  out <- capture.output(print(t))
  expect_identical(out[1], "<rkeras_tensor shape=(2, 3) dtype=float32>")
  expect_identical(out[-1], capture.output(print(matrix(c(1, 2, 3, 4, 5, 6), 2))))
  expect_identical(capture.output(print(rk_tensor(2.5))), c("<rkeras_tensor shape=() dtype=float64>", "[1] 2.5"))
  expect_identical(dim(rk_tensor(2.5)), integer())
  expect_match(format(rk_tensor(1, requires_grad = TRUE)), "requires_grad=TRUE")
  capture.output(vis <- withVisible(print(t)))
  expect_false(vis$visible)
  expect_identical(vis$value, t)
  expect_identical(as.double(t), c(1, 2, 3, 4, 5, 6))
  expect_identical(as.integer(rk_tensor(c(1.7, 2))), c(1L, 2L))
  expect_identical(as.logical(rk_tensor(c(0, 3))), c(FALSE, TRUE))
})

test_that("arithmetic and comparison operators match base R, with R values on either side", {
  x <- matrix(c(0.5, -1, 2, 3.5, -0.25, 4), 2)
  y <- matrix(c(1, 2, -3, 0.5, 8, -2), 2)
  tx <- rk_tensor(x)
  ty <- rk_tensor(y)
  expect_equal(as.array(tx + ty), x + y)
  expect_equal(as.array(tx - ty), x - y)
  expect_equal(as.array(tx * ty), x * y)
  expect_equal(as.array(tx / ty), x / y)
  expect_equal(as.array(abs(tx)^ty), abs(x)^y)
  expect_equal(as.array(2 * tx), 2 * x)
  expect_equal(as.array(tx - 1), x - 1)
  expect_equal(as.array(1 - tx), 1 - x)
  expect_equal(as.array(y / tx), y / x)
  expect_equal(as.array(2^tx), 2^x)
  expect_equal(as.array(-tx), -x)
  expect_equal(as.array(+tx), x)
  expect_identical(as.array(tx == ty), x == y)
  expect_identical(as.array(tx != 2), x != 2)
  expect_identical(as.array(tx < ty), x < y)
  expect_identical(as.array(tx <= 2), x <= 2)
  expect_identical(as.array(0 > tx), 0 > x)
  expect_identical(as.array(tx >= ty), x >= y)
  expect_identical(as.array((tx > 0) & (ty > 0)), (x > 0) & (y > 0))
  expect_identical(as.array((tx > 0) | (ty > 0)), (x > 0) | (y > 0))
  expect_identical(as.array(!(tx > 0)), !(x > 0))
  expect_error(tx %% 2, class = "rkeras_unsupported_error")
})

test_that("R numbers take the dtype of a floating tensor; promotion applies otherwise", {
  t32 <- rk_tensor(c(1, 2), dtype = "float32")
  expect_identical(rk_tensor_dtype(t32 * 2), "float32")
  expect_identical(rk_tensor_dtype(2 + t32), "float32")
  expect_identical(rk_tensor_dtype(t32 + rk_tensor(1)), "float64")  # tensor + tensor promotes
  expect_identical(rk_tensor_dtype(rk_tensor(1:2) + 1L), "int32")
  expect_identical(as.array(rk_tensor(1:2) + 1L), array(2:3, 2L))
  expect_identical(rk_tensor_dtype(rk_tensor(1:2) + 0.5), "float64")
})

test_that("Math, Summary and mean methods match base R", {
  x <- array(c(0.5, 1, 2, 3.5, 0.25, 4, 1.5, 0.75), c(2, 2, 2))
  t <- rk_tensor(x)
  expect_equal(as.array(exp(t)), exp(x))
  expect_equal(as.array(log(t)), log(x))
  expect_equal(as.array(log1p(t)), log1p(x))
  expect_equal(as.array(sqrt(t)), sqrt(x))
  expect_equal(as.array(abs(-t)), x)
  expect_equal(as.array(sign(t - 1)), sign(x - 1))
  expect_equal(as.array(tanh(t)), tanh(x))
  expect_equal(as.array(sum(t)), sum(x))
  expect_equal(as.array(prod(t)), prod(x))
  expect_equal(as.array(max(t)), max(x))
  expect_equal(as.array(min(t)), min(x))
  expect_equal(as.array(mean(t)), mean(x))
  expect_error(cos(t), class = "rkeras_unsupported_error")
  expect_error(sum(t, t), class = "rkeras_value_error")
})

test_that("backward through composite expressions matches analytic gradients", {
  set.seed(2)
  x <- matrix(rnorm(6), 2, 3)
  y <- rnorm(3)
  tx <- rk_tensor(x, requires_grad = TRUE)
  ty <- rk_tensor(y, requires_grad = TRUE)
  # f = sum(x^2 * y) with y broadcast over rows
  rk_backward(sum(tx^2 * ty))
  expect_equal(as.array(rk_grad(tx)), 2 * x * matrix(y, 2, 3, byrow = TRUE))
  expect_equal(as.array(rk_grad(ty)), array(colSums(x^2), 3L))

  # mean squared error of a linear model: d/dw = 2/n X^T (Xw - y)
  X <- matrix(rnorm(20), 5, 4)
  w <- matrix(rnorm(4), 4, 1)
  target <- matrix(rnorm(5), 5, 1)
  tw <- rk_tensor(w, requires_grad = TRUE)
  loss <- mean((rk_matmul(rk_tensor(X), tw) - target)^2)
  expect_equal(as.array(loss), mean((X %*% w - target)^2))
  rk_backward(loss)
  expect_equal(as.array(rk_grad(tw)), 2 / 5 * crossprod(X, X %*% w - target))

  # softmax cross-entropy from logits: d/dz = (softmax(z) - onehot) / n for the mean
  z <- matrix(rnorm(6), 2, 3)
  onehot <- diag(3)[c(2, 3), ]
  tz <- rk_tensor(z, requires_grad = TRUE)
  rk_backward(mean(rk_categorical_crossentropy(onehot, tz, from_logits = TRUE)))
  p <- exp(z) / rowSums(exp(z))
  expect_equal(as.array(rk_grad(tz)), (p - onehot) / 2)

  # chain of unary functions: d/dx sum(tanh(exp(x) / 2)) = (1 - tanh(u)^2) * exp(x) / 2
  v <- c(-1, 0.3, 1.2)
  tv <- rk_tensor(v, requires_grad = TRUE)
  rk_backward(sum(tanh(exp(tv) / 2)))
  u <- exp(v) / 2
  expect_equal(as.array(rk_grad(tv)), array((1 - tanh(u)^2) * exp(v) / 2, 3L))
})

test_that("gradients accumulate, explicit output gradients work, and released graphs are refused", {
  tx <- rk_tensor(c(1, 2, 3), requires_grad = TRUE)
  expect_null(rk_grad(tx))
  rk_backward(sum(tx * 2))
  rk_backward(sum(tx * 3))
  expect_equal(as.array(rk_grad(tx)), array(c(5, 5, 5), 3L))
  rk_zero_grad(tx)
  expect_null(rk_grad(tx))

  y <- tx * tx
  rk_backward(y, grad = c(1, 0, 2), retain_graph = TRUE)
  expect_equal(as.array(rk_grad(tx)), array(c(2, 0, 12), 3L))
  rk_backward(y, grad = rk_tensor(c(1, 1, 1)))
  expect_equal(as.array(rk_grad(tx)), array(c(4, 4, 18), 3L))
  expect_error(rk_backward(y, grad = c(1, 1, 1)), class = "rkeras_autograd_error")
  expect_error(rk_backward(tx * tx), class = "rkeras_autograd_error")  # non-scalar root without grad
  expect_error(rk_backward(tx * 1, grad = c(1, 1)), "(2,)", class = "rkeras_shape_error")
  expect_error(rk_tensor(1:3, requires_grad = TRUE), class = "rkeras_type_error")
  expect_error(rk_tensor(1, requires_grad = NA), class = "rkeras_type_error")
})

test_that("with_no_grad records nothing and restores the mode, also on error", {
  tx <- rk_tensor(c(1, 2), requires_grad = TRUE)
  expect_true(rk_grad_enabled())
  y <- with_no_grad(tx * 2)
  expect_false(rk_requires_grad(y))
  expect_true(rk_grad_enabled())
  expect_true(rk_requires_grad(tx * 2))
  expect_error(with_no_grad({
    expect_false(rk_grad_enabled())
    stop("boom")
  }), "boom")
  expect_true(rk_grad_enabled())
  nested <- with_no_grad(with_no_grad(1) + rk_grad_enabled())
  expect_identical(nested, 1)
  expect_true(rk_grad_enabled())
  # an update under no-grad, then a fresh leaf, as in a training loop
  rk_backward(sum(tx^2))
  w <- with_no_grad(rk_tensor(tx - 0.5 * rk_grad(tx), requires_grad = TRUE))
  expect_true(rk_requires_grad(w))
  expect_equal(as.array(w), array(c(0, 0), 2L))
  expect_null(rk_grad(w))
})

test_that("detach shares values but not history", {
  tx <- rk_tensor(c(1, 2), requires_grad = TRUE)
  y <- tx * 3
  d <- rk_detach(y)
  expect_false(rk_requires_grad(d))
  expect_equal(as.array(d), array(c(3, 6), 2L))
  expect_error(rk_set_requires_grad(y, FALSE), class = "rkeras_autograd_error")
})
