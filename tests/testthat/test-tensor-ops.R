# Every engine op through its internal R wrapper, against base R, in float64 and float32.

dtypes <- c("float64", "float32")
tol <- function(dt) if (dt == "float64") 1e-10 else 2e-6

# Compares values and shape; `expected` without dim is a rank-0 (length 1) or rank-1 result.
expect_tensor <- function(t, expected, dt = "float64", tolerance = tol(dt)) {
  expect_s3_class(t, "rkeras_tensor")
  want_dim <- if (!is.null(dim(expected))) dim(expected) else if (length(expected) == 1L) integer() else length(expected)
  expect_identical(dim(t), as.integer(want_dim))
  got <- as.vector(as.array(t))
  want <- as.vector(expected)
  if (is.logical(want) || is.integer(want)) {
    expect_identical(got, want)
  } else {
    expect_equal(got, want, tolerance = tolerance)
  }
}

as_t <- function(x, dt) rk_tensor(x, dtype = dt)
byrow <- function(v, n) matrix(v, n, length(v), byrow = TRUE)
erf <- function(x) 2 * pnorm(x * sqrt(2)) - 1

set.seed(42)
X <- matrix(c(-2.5, -1, -0.3, 0, 0.4, 1.5, 2, 3.2), 2, 4)
P <- matrix(runif(8, 0.1, 3), 2, 4)  # positive, for log/sqrt/power

test_that("every op the engine exposes has an R wrapper", {
  for (op in rk_op_names()) {
    expect_true(exists(paste0("rk_", op), mode = "function"), info = op)
  }
  expect_error(rk_call_op("no_such_op", list(), list()), "unknown op", class = "rkeras_value_error")
  expect_error(rk_call_op("add", list(rk_tensor(1)), list()), "takes 2", class = "rkeras_value_error")
  expect_error(rk_call_op("add", list(1, 2), list()), class = "rkeras_type_error")
  expect_error(rk_call_op("elu", list(rk_tensor(1)), list()), "alpha", class = "rkeras_value_error")
})

test_that("creation ops", {
  for (dt in dtypes) {
    expect_tensor(rk_full(c(2, 3), 1.5, dt), matrix(1.5, 2, 3), dt)
    expect_identical(rk_tensor_dtype(rk_full(c(2, 3), 1.5, dt)), dt)
    expect_tensor(rk_zeros(c(2, 1, 3), dt), array(0, c(2, 1, 3)), dt)
    expect_tensor(rk_ones(4, dt), rep(1, 4), dt)
    expect_tensor(rk_scalar(2.5, dt), 2.5, dt)
    t <- as_t(X, dt)
    expect_tensor(rk_zeros_like(t), X * 0, dt)
    expect_tensor(rk_ones_like(t), X * 0 + 1, dt)
    expect_identical(rk_tensor_dtype(rk_ones_like(t)), dt)
    expect_identical(rk_tensor_dtype(rk_ones_like(t, dtype = "int32")), "int32")
    expect_tensor(rk_clone(t), X, dt)
  }
  expect_identical(rk_tensor_dtype(rk_zeros(2)), "float32")  # floatx default
  expect_tensor(rk_zeros(integer()), 0)  # rank 0
  expect_tensor(rk_full(c(2, 2), 3, "int32"), matrix(3L, 2, 2))
  expect_error(rk_zeros(c(2, -3)), class = "rkeras_error")
})

test_that("cast converts between all dtypes", {
  x <- c(-2.7, -0.2, 0, 1.9, 3)
  t <- rk_tensor(x)
  expect_tensor(rk_cast(t, "int32"), as.integer(x))
  expect_tensor(rk_cast(t, "bool"), x != 0)
  expect_tensor(rk_cast(t, "float32"), x, "float32")
  expect_tensor(rk_cast(rk_tensor(c(TRUE, FALSE)), "float64"), c(1, 0))
  expect_tensor(rk_cast(rk_tensor(1:3), "float32"), c(1, 2, 3), "float32")
  expect_error(rk_cast(t, "complex64"), class = "rkeras_value_error")
})

test_that("unary elementwise ops match base R", {
  selu_a <- 1.6732632423543772848170429916717
  selu_s <- 1.0507009873554804934193349852946
  cases <- list(
    negative = function(x) -x, exp = exp, sqrt = sqrt, log = log, log1p = log1p,
    square = function(x) x^2, abs = abs, sign = sign, reciprocal = function(x) 1 / x,
    tanh = tanh, sigmoid = function(x) 1 / (1 + exp(-x)),
    relu = function(x) pmax(x, 0), relu6 = function(x) pmin(pmax(x, 0), 6),
    selu = function(x) selu_s * ifelse(x > 0, x, selu_a * (exp(x) - 1)),
    softplus = function(x) log1p(exp(x)), softsign = function(x) x / (1 + abs(x)),
    silu = function(x) x / (1 + exp(-x)), mish = function(x) x * tanh(log1p(exp(x))),
    erf = erf
  )
  positive_only <- c("sqrt", "log", "log1p", "reciprocal")
  for (dt in dtypes) {
    for (op in names(cases)) {
      x <- if (op %in% positive_only) P else X
      got <- get(paste0("rk_", op))(as_t(x, dt))
      expect_tensor(got, cases[[op]](x), dt)
      expect_identical(rk_tensor_dtype(got), dt)
    }
    x <- X * 2  # reaches beyond relu6's 6
    expect_tensor(rk_relu6(as_t(x, dt)), pmin(pmax(x, 0), 6), dt)
    expect_tensor(rk_elu(as_t(X, dt)), ifelse(X > 0, X, exp(X) - 1), dt)
    expect_tensor(rk_elu(as_t(X, dt), alpha = 0.5), ifelse(X > 0, X, 0.5 * (exp(X) - 1)), dt)
    expect_tensor(rk_gelu(as_t(X, dt), approximate = FALSE), X * pnorm(X), dt)
    expect_tensor(rk_gelu(as_t(X, dt)), 0.5 * X * (1 + tanh(sqrt(2 / pi) * (X + 0.044715 * X^3))), dt)
    expect_tensor(rk_leaky_relu(as_t(X, dt)), ifelse(X >= 0, X, 0.2 * X), dt)
    expect_tensor(rk_leaky_relu(as_t(X, dt), 0.01), ifelse(X >= 0, X, 0.01 * X), dt)
    expect_tensor(rk_hard_sigmoid(as_t(X * 2, dt)), pmin(pmax(X * 2 / 6 + 0.5, 0), 1), dt)
    expect_tensor(rk_hard_sigmoid(as_t(X, dt), slope = 0.2, offset = 0.5), pmin(pmax(0.2 * X + 0.5, 0), 1), dt)
    expect_tensor(rk_clip(as_t(X, dt), -1, 1.5), pmin(pmax(X, -1), 1.5), dt)
  }
  # R arrays are accepted directly
  expect_tensor(rk_exp(X), exp(X))
})

test_that("binary ops match base R, with broadcasting", {
  y_row <- c(0.5, -2, 1.5, 3)           # shape (4,): broadcast over rows of X (2, 4)
  col <- matrix(c(1.5, -0.5), 2, 1)     # shape (2, 1) against a (1, 4) row: outer
  row <- matrix(c(-1, 0, 2, 0.25), 1, 4)
  cases <- list(add = `+`, subtract = `-`, multiply = `*`, divide = `/`, maximum = pmax, minimum = pmin)
  for (dt in dtypes) {
    for (op in names(cases)) {
      f <- get(paste0("rk_", op))
      expect_tensor(f(as_t(X, dt), as_t(P, dt)), cases[[op]](X, P), dt)
      expect_tensor(f(as_t(X, dt), as_t(y_row, dt)), cases[[op]](X, byrow(y_row, 2)), dt)
      expect_tensor(f(as_t(y_row, dt), as_t(X, dt)), cases[[op]](byrow(y_row, 2), X), dt)
      expect_tensor(f(as_t(col, dt), as_t(row, dt)), outer(as.vector(col), as.vector(row), cases[[op]]), dt)
      expect_tensor(f(as_t(X, dt), 2), cases[[op]](X, matrix(2, 2, 4)), dt)
    }
    expect_tensor(rk_power(as_t(P, dt), as_t(X, dt)), P^X, dt)
    expect_tensor(rk_power(as_t(P, dt), as_t(y_row, dt)), P^byrow(y_row, 2), dt)
    expect_tensor(rk_power(as_t(X, dt), 2), X^2, dt)
  }
  # mixed dtypes promote: int32 + float32 -> float32, float32 + float64 -> float64
  expect_identical(rk_tensor_dtype(rk_add(rk_tensor(1:2), rk_tensor(c(1, 2), "float32"))), "float32")
  expect_identical(rk_tensor_dtype(rk_add(rk_tensor(1, "float32"), rk_tensor(1))), "float64")
  expect_tensor(rk_add(1:3, 1L), 2:4)
})

test_that("comparisons, logical ops and where match base R", {
  y_row <- c(0, -1, 2, 3.2)
  cases <- list(equal = `==`, not_equal = `!=`, less = `<`, less_equal = `<=`, greater = `>`, greater_equal = `>=`)
  for (dt in dtypes) {
    for (op in names(cases)) {
      f <- get(paste0("rk_", op))
      got <- f(as_t(X, dt), as_t(y_row, dt))
      expect_identical(rk_tensor_dtype(got), "bool")
      expect_tensor(got, cases[[op]](X, byrow(y_row, 2)))
    }
    expect_tensor(rk_where(X > 0, as_t(X, dt), as_t(P, dt)), ifelse(X > 0, X, P), dt)
    expect_tensor(rk_where(c(TRUE, FALSE, TRUE, FALSE), as_t(X, dt), 0), ifelse(byrow(c(TRUE, FALSE, TRUE, FALSE), 2), X, 0), dt)
  }
  a <- matrix(c(TRUE, FALSE, TRUE, FALSE), 2)
  b <- matrix(c(TRUE, TRUE, FALSE, FALSE), 2)
  expect_tensor(rk_logical_and(a, b), a & b)
  expect_tensor(rk_logical_or(a, b), a | b)
  expect_tensor(rk_logical_not(a), !a)
  expect_tensor(rk_logical_and(a, c(TRUE, FALSE)), a & byrow(c(TRUE, FALSE), 2))
})

test_that("dropout zeroes about `rate` of the values and scales the rest; it is reproducible", {
  for (dt in dtypes) {
    x <- rk_ones(c(100, 100), dt)
    expect_tensor(rk_dropout(x, 0), matrix(1, 100, 100), dt)
    set.seed(3)
    d <- as.array(rk_dropout(x, 0.25))
    expect_true(all(d == 0 | abs(d - 4 / 3) < 1e-6))
    expect_equal(mean(d == 0), 0.25, tolerance = 0.05)
    set.seed(3)
    expect_identical(as.array(rk_dropout(x, 0.25)), d)
    expect_identical(as.array(rk_dropout(x, 0.5, seed = 7)), as.array(rk_dropout(x, 0.5, seed = 7)))
    # a noise shape of (1, 100) drops whole columns
    dc <- as.array(rk_dropout(x, 0.5, noise_shape = c(1, 100)))
    expect_true(all(apply(dc, 2, function(v) length(unique(v)) == 1L)))
  }
  expect_error(rk_dropout(rk_ones(3), 1), class = "rkeras_value_error")
})

test_that("sum_to and broadcast_to", {
  for (dt in dtypes) {
    expect_tensor(rk_sum_to(as_t(X, dt), 4), colSums(X), dt)
    expect_tensor(rk_sum_to(as_t(X, dt), c(2, 1)), matrix(rowSums(X), 2, 1), dt)
    expect_tensor(rk_sum_to(as_t(X, dt), integer()), sum(X), dt)
    expect_tensor(rk_broadcast_to(as_t(c(1, 2, 3), dt), c(2, 3)), byrow(c(1, 2, 3), 2), dt)
    expect_tensor(rk_broadcast_to(as_t(matrix(c(1, 2), 2, 1), dt), c(2, 3)), matrix(c(1, 2), 2, 3), dt)
  }
  expect_error(rk_broadcast_to(c(1, 2, 3), c(2, 4)), class = "rkeras_shape_error")
})

test_that("reductions over 1-based axes match apply()", {
  A <- array(c(X, P, X / 2), c(2, 4, 3))
  lse <- function(v) log(sum(exp(v)))
  fns <- list(sum = sum, mean = mean, max = max, min = min, prod = prod, logsumexp = lse)
  for (dt in dtypes) {
    t <- as_t(A, dt)
    for (op in names(fns)) {
      f <- get(paste0("rk_", op))
      g <- fns[[op]]
      expect_tensor(f(t), g(A), dt)
      expect_tensor(f(t, axis = 1), apply(A, c(2, 3), g), dt)
      expect_tensor(f(t, axis = 2), apply(A, c(1, 3), g), dt)
      expect_tensor(f(t, axis = -1), apply(A, c(1, 2), g), dt)
      expect_tensor(f(t, axis = c(1, 3)), apply(A, 2, g), dt)
      expect_tensor(f(t, axis = 2, keepdims = TRUE), array(apply(A, c(1, 3), g), c(2, 1, 3)), dt)
      expect_tensor(f(t, keepdims = TRUE), array(g(A), c(1, 1, 1)), dt)
    }
  }
  expect_tensor(rk_sum(1:10), 55L)  # int32 sums stay integer
})

test_that("argmax and argmin return 1-based indices (0-based on request)", {
  A <- array(c(3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8), c(2, 3, 2))
  for (dt in dtypes) {
    t <- as_t(A, dt)
    expect_tensor(rk_argmax(t, axis = 2), apply(A, c(1, 3), which.max))
    expect_tensor(rk_argmin(t, axis = 2), apply(A, c(1, 3), which.min))
    expect_tensor(rk_argmax(t, axis = 1), apply(A, c(2, 3), which.max))
    expect_tensor(rk_argmax(t, axis = -1), apply(A, c(1, 2), which.max))
    expect_tensor(rk_argmax(t, axis = 2, zero_indexed = TRUE), apply(A, c(1, 3), which.max) - 1L)
    expect_tensor(rk_argmax(t, axis = 2, keepdims = TRUE), array(apply(A, c(1, 3), which.max), c(2, 1, 2)))
    # axis = NULL: position in the row-major flattening
    expect_tensor(rk_argmax(t), which.max(aperm(A)))
    expect_tensor(rk_argmin(t), which.min(aperm(A)))
  }
  expect_identical(rk_tensor_dtype(rk_argmax(A, 1)), "int32")
})

test_that("softmax and log_softmax along 1-based axes", {
  for (dt in dtypes) {
    sm_rows <- exp(X) / rowSums(exp(X))
    expect_tensor(rk_softmax(as_t(X, dt)), sm_rows, dt)
    expect_tensor(rk_softmax(as_t(X, dt), axis = 2), sm_rows, dt)
    expect_tensor(rk_softmax(as_t(X, dt), axis = 1), exp(X) / byrow(colSums(exp(X)), 2), dt)
    expect_tensor(rk_log_softmax(as_t(X, dt)), log(sm_rows), dt)
    expect_tensor(rk_log_softmax(as_t(X, dt), axis = 1), log(exp(X) / byrow(colSums(exp(X)), 2)), dt)
  }
})

test_that("cross-entropies match their definitions", {
  onehot <- diag(4)[c(2, 4), ]
  labels <- c(1L, 3L)  # 0-based class labels, as keras3
  probs <- P / rowSums(P)
  lsm <- X - log(rowSums(exp(X)))
  for (dt in dtypes) {
    expect_tensor(rk_categorical_crossentropy(onehot, as_t(X, dt), from_logits = TRUE), -rowSums(onehot * lsm), dt)
    expect_tensor(rk_categorical_crossentropy(onehot, as_t(P, dt)), -rowSums(onehot * log(probs)), dt)
    expect_tensor(rk_sparse_categorical_crossentropy(labels, as_t(X, dt), from_logits = TRUE), -lsm[cbind(1:2, labels + 1L)], dt)
    expect_tensor(rk_sparse_categorical_crossentropy(labels, as_t(probs, dt)), -log(probs[cbind(1:2, labels + 1L)]), dt)
    tb <- matrix(c(0, 1, 1, 0, 0.3, 1, 0, 0.5), 2)
    pb <- 1 / (1 + exp(-X))
    expect_tensor(rk_binary_crossentropy(tb, as_t(pb, dt)), -(tb * log(pb) + (1 - tb) * log(1 - pb)), dt, tolerance = 1e-5)
    expect_tensor(rk_binary_crossentropy(tb, as_t(X, dt), from_logits = TRUE), -(tb * log(pb) + (1 - tb) * log(1 - pb)), dt)
  }
  expect_error(rk_sparse_categorical_crossentropy(c(0L, 4L), X, from_logits = TRUE), "4", class = "rkeras_index_error")
  expect_error(rk_categorical_crossentropy(diag(3)[1:2, ], X), class = "rkeras_shape_error")
})

test_that("matmul matches %*% for matrices, vectors and batches", {
  A <- matrix(rnorm(6), 2, 3)
  B <- matrix(rnorm(12), 3, 4)
  v <- rnorm(3)
  A3 <- array(rnorm(2 * 3 * 4), c(2, 3, 4))
  B3 <- array(rnorm(2 * 4 * 5), c(2, 4, 5))
  W <- matrix(rnorm(20), 4, 5)
  for (dt in dtypes) {
    expect_tensor(rk_matmul(as_t(A, dt), as_t(B, dt)), A %*% B, dt)
    expect_tensor(rk_matmul(as_t(A, dt), as_t(v, dt)), as.vector(A %*% v), dt)
    expect_tensor(rk_matmul(as_t(v, dt), as_t(B, dt)), as.vector(v %*% B), dt)
    expect_tensor(rk_matmul(as_t(v, dt), as_t(v, dt)), sum(v * v), dt)
    want <- array(0, c(2, 3, 5))
    for (b in 1:2) want[b, , ] <- A3[b, , ] %*% B3[b, , ]
    expect_tensor(rk_matmul(as_t(A3, dt), as_t(B3, dt)), want, dt)
    for (b in 1:2) want[b, , ] <- A3[b, , ] %*% W
    expect_tensor(rk_matmul(as_t(A3, dt), as_t(W, dt)), want, dt)
    expect_tensor(rk_matmul(rk_transpose(as_t(A, dt)), as_t(A, dt)), crossprod(A), dt)
  }
  big_a <- matrix(rnorm(64 * 70), 64, 70)
  big_b <- matrix(rnorm(70 * 33), 70, 33)
  expect_tensor(rk_matmul(big_a, big_b), big_a %*% big_b)
  expect_tensor(rk_matmul(as_t(big_a, "float32"), as_t(big_b, "float32")), big_a %*% big_b, "float32", tolerance = 1e-5)
})

test_that("shape errors name both shapes", {
  err <- tryCatch(rk_matmul(matrix(1, 2, 3), matrix(1, 4, 5)), error = function(e) e)
  expect_s3_class(err, "rkeras_shape_error")
  expect_match(conditionMessage(err), "(2, 3)", fixed = TRUE)
  expect_match(conditionMessage(err), "(4, 5)", fixed = TRUE)
  err <- tryCatch(rk_add(matrix(1, 2, 3), matrix(1, 3, 2)), error = function(e) e)
  expect_s3_class(err, "rkeras_shape_error")
  expect_match(conditionMessage(err), "(2, 3)", fixed = TRUE)
  expect_match(conditionMessage(err), "(3, 2)", fixed = TRUE)
  expect_error(rk_reshape(1:6, c(4, 2)), "(6,)", class = "rkeras_shape_error")
})

test_that("1-based axes: 0 and out-of-range axes are classed errors naming the shape", {
  t <- rk_tensor(X)
  expect_error(rk_sum(t, axis = 0), "1-based", class = "rkeras_index_error")
  expect_error(rk_sum(t, axis = 3), "(2, 4)", class = "rkeras_index_error")
  expect_error(rk_sum(t, axis = -3), class = "rkeras_index_error")
  expect_error(rk_sum(t, axis = 1.5), class = "rkeras_value_error")
  expect_error(rk_sum(t, keepdims = "yes"), class = "rkeras_type_error")
  expect_tensor(rk_sum(t, axis = -2), colSums(X))
})

test_that("reshape (row-major), transpose, expand_dims, squeeze", {
  A <- array(as.numeric(1:24), c(2, 3, 4))
  for (dt in dtypes) {
    t <- as_t(X, dt)
    # row-major refill, as keras3's array_reshape()
    expect_tensor(rk_reshape(t, c(4, 2)), matrix(as.vector(t(X)), 4, 2, byrow = TRUE), dt)
    expect_tensor(rk_reshape(t, c(-1, 2)), matrix(as.vector(t(X)), 4, 2, byrow = TRUE), dt)
    expect_tensor(rk_reshape(t, NA), as.vector(t(X)), dt)
    expect_tensor(rk_transpose(t), t(X), dt)
    ta <- as_t(A, dt)
    expect_tensor(rk_transpose(ta), aperm(A), dt)
    expect_tensor(rk_transpose(ta, c(2, 3, 1)), aperm(A, c(2, 3, 1)), dt)
    expect_tensor(rk_transpose(ta, c(-1, 1, 2)), aperm(A, c(3, 1, 2)), dt)
    expect_tensor(rk_expand_dims(t, 1), array(X, c(1, 2, 4)), dt)
    expect_tensor(rk_expand_dims(t, 2), array(X, c(2, 1, 4)), dt)
    expect_tensor(rk_expand_dims(t, -1), array(X, c(2, 4, 1)), dt)
    s <- as_t(array(1:6, c(1, 3, 1, 2)), dt)
    expect_tensor(rk_squeeze(s), matrix(1:6, 3, 2) + 0, dt)
    expect_tensor(rk_squeeze(s, 1), array(1:6, c(3, 1, 2)) + 0, dt)
    expect_tensor(rk_squeeze(s, c(1, -2)), matrix(1:6, 3, 2) + 0, dt)
  }
  expect_error(rk_squeeze(array(1:6, c(1, 3, 2)), 2), class = "rkeras_shape_error")
})

test_that("concatenate, stack and split along 1-based axes", {
  A <- matrix(1:6, 2, 3) + 0
  B <- matrix(7:12, 2, 3) + 0
  C <- matrix(13:16, 2, 2) + 0
  for (dt in dtypes) {
    expect_tensor(rk_concatenate(list(as_t(A, dt), as_t(B, dt))), rbind(A, B), dt)
    expect_tensor(rk_concatenate(list(as_t(A, dt), as_t(B, dt), as_t(C, dt)), axis = 2), cbind(A, B, C), dt)
    expect_tensor(rk_concatenate(list(as_t(A, dt), B), axis = -1), cbind(A, B), dt)
    s1 <- array(0, c(2, 2, 3)); s1[1, , ] <- A; s1[2, , ] <- B
    expect_tensor(rk_stack(list(as_t(A, dt), as_t(B, dt))), s1, dt)
    expect_tensor(rk_stack(list(as_t(A, dt), as_t(B, dt)), axis = 3), array(c(A, B), c(2, 3, 2)), dt)
    expect_tensor(rk_stack(list(as_t(A, dt), as_t(B, dt)), axis = -1), array(c(A, B), c(2, 3, 2)), dt)
    parts <- rk_split(as_t(cbind(A, C), dt), c(3, 2), axis = 2)
    expect_length(parts, 2L)
    expect_tensor(parts[[1]], A, dt)
    expect_tensor(parts[[2]], C, dt)
    rows <- rk_split(as_t(A, dt), c(1, 1))
    expect_tensor(rows[[2]], A[2, , drop = FALSE], dt)
  }
  expect_error(rk_concatenate(list(A, C)), "(2, 2)", class = "rkeras_shape_error")
  expect_error(rk_stack(list(A, C)), class = "rkeras_shape_error")
  expect_error(rk_split(A, c(1, 1), axis = 2), class = "rkeras_error")
})

test_that("slice, take and one_hot use 1-based positions", {
  A <- array(as.numeric(1:24), c(2, 3, 4))
  for (dt in dtypes) {
    t <- as_t(X, dt)
    expect_tensor(rk_slice(t, c(1, 2), c(2, 2)), X[1:2, 2:3], dt)
    expect_tensor(rk_slice(t, c(2, 3), c(1, -1)), X[2, 3:4, drop = FALSE], dt)
    expect_tensor(rk_slice(as_t(A, dt), c(1, 2, 2), c(2, 2, 3)), A[1:2, 2:3, 2:4], dt)
    expect_tensor(rk_take(t, c(3, 1), axis = 2), X[, c(3, 1)], dt)
    expect_tensor(rk_take(t, c(2, 0), axis = 2, zero_indexed = TRUE), X[, c(3, 1)], dt)
    expect_tensor(rk_take(t, -1, axis = 2), X[, 4], dt)
    expect_tensor(rk_take(t, matrix(c(1, 2, 2, 1), 2), axis = 1), array(X[c(1, 2, 2, 1), ], c(2, 2, 4)), dt)
    expect_tensor(rk_take(t, c(1, 5, 8)), as.vector(t(X))[c(1, 5, 8)], dt)  # flattened row-major
    expect_tensor(rk_take(t, rk_tensor(c(4L, 2L)), axis = 2), X[, c(4, 2)], dt)
    expect_tensor(rk_one_hot(c(1, 3, 2), 3, dtype = dt), diag(3)[c(1, 3, 2), ], dt)
    expect_tensor(rk_one_hot(c(0, 2), 3, dtype = dt, zero_indexed = TRUE), diag(3)[c(1, 3), ], dt)
  }
  expect_identical(rk_tensor_dtype(rk_one_hot(1:2, 2)), "float32")
  expect_tensor(rk_one_hot(matrix(c(1L, 2L, 2L, 1L), 2), 2), array(c(1, 0, 0, 1, 0, 1, 1, 0), c(2, 2, 2)), "float32")
  expect_error(rk_take(X, 9, axis = 2), class = "rkeras_index_error")
  expect_error(rk_take(X, NA, axis = 2), class = "rkeras_value_error")
})

test_that("random ops are reproducible under set.seed() and an explicit seed", {
  for (dt in dtypes) {
    set.seed(11)
    u1 <- as.array(rk_random_uniform(c(50, 40), -1, 3, dtype = dt))
    set.seed(11)
    u2 <- as.array(rk_random_uniform(c(50, 40), -1, 3, dtype = dt))
    expect_identical(u1, u2)
    expect_identical(dim(u1), c(50L, 40L))
    expect_true(all(u1 >= -1 & u1 < 3))
    expect_equal(mean(u1), 1, tolerance = 0.1)
    u3 <- as.array(rk_random_uniform(c(50, 40), -1, 3, dtype = dt))
    expect_false(identical(u1, u3))
    n1 <- as.array(rk_random_normal(c(100, 100), mean = 2, stddev = 0.5, dtype = dt, seed = 5))
    n2 <- as.array(rk_random_normal(c(100, 100), mean = 2, stddev = 0.5, dtype = dt, seed = 5))
    expect_identical(n1, n2)
    expect_equal(mean(n1), 2, tolerance = 0.01)
    expect_equal(sd(as.vector(n1)), 0.5, tolerance = 0.02)
  }
  expect_identical(rk_tensor_dtype(rk_random_normal(3)), "float32")
  expect_error(rk_random_uniform(3, 1, 0), class = "rkeras_value_error")
  expect_error(rk_random_normal(3, seed = -1), class = "rkeras_value_error")
})

test_that("gradients through the R wrappers match finite differences (float64)", {
  numgrad <- function(f, x, h = 1e-6) {
    g <- x
    for (i in seq_along(x)) {
      xp <- x; xp[i] <- xp[i] + h
      xm <- x; xm[i] <- xm[i] - h
      g[i] <- (f(xp) - f(xm)) / (2 * h)
    }
    g
  }
  check <- function(f_t, x) {
    tx <- rk_tensor(x, requires_grad = TRUE)
    rk_backward(f_t(tx))
    f_r <- function(v) as.array(with_no_grad(f_t(rk_tensor(v))))
    expect_equal(as.vector(as.array(rk_grad(tx))), as.vector(numgrad(f_r, x)), tolerance = 1e-6)
  }
  W <- matrix(rnorm(8), 4, 2)
  check(function(t) rk_sum(rk_sigmoid(rk_matmul(t, W))), X)
  check(function(t) rk_mean(rk_softmax(t, axis = 1) * P), X)
  check(function(t) rk_sum(rk_logsumexp(t, axis = 2)), X)
  check(function(t) rk_sum(rk_max(t, axis = 1) * c(1, 2, 3, 4)), X)
  check(function(t) rk_sum(rk_take(rk_gelu(t), c(1, 3), axis = 2)), X)
  check(function(t) rk_sum(rk_reshape(rk_transpose(t), c(2, 4)) * X), X)
  check(function(t) rk_sum(rk_concatenate(list(t, rk_square(t)), axis = 2)^2), X)
  check(function(t) rk_mean(rk_binary_crossentropy(P / 4 > 0.4, t, from_logits = TRUE)), X)
  check(function(t) rk_sum(rk_where(X > 0, rk_exp(t), rk_elu(t)) / rk_broadcast_to(c(1, 2, 3, 4), c(2, 4))), X)
})
