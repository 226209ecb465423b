# to_categorical ---------------------------------------------------------------

test_that("to_categorical one-hot encodes 0-based labels", {
  y <- to_categorical(c(0, 1, 2, 3), num_classes = 4)
  expect_identical(y, diag(4) * 1)
  expect_type(y, "double")

  y <- to_categorical(c(2L, 0L, 1L))
  expect_identical(dim(y), c(3L, 3L))
  expect_identical(y, rbind(c(0, 0, 1), c(1, 0, 0), c(0, 1, 0)))

  y <- to_categorical(c(1, 1), num_classes = 5)
  expect_identical(y, rbind(c(0, 1, 0, 0, 0), c(0, 1, 0, 0, 0)))
})

test_that("to_categorical accepts 1-d arrays and (n, 1) matrices", {
  x <- array(c(0L, 2L, 1L), dim = 3)
  expect_identical(dim(to_categorical(x)), c(3L, 3L))
  m <- matrix(c(0, 2, 1), ncol = 1)
  expect_identical(to_categorical(m), to_categorical(c(0, 2, 1)))
})

test_that("to_categorical keeps index semantics for arrays", {
  x <- matrix(c(0, 1, 2, 1, 0, 2), nrow = 2)  # 2 x 3
  y <- to_categorical(x)
  expect_identical(dim(y), c(2L, 3L, 3L))
  for (i in 1:2) for (j in 1:3) {
    expected <- numeric(3)
    expected[x[i, j] + 1] <- 1
    expect_identical(y[i, j, ], expected)
  }
})

test_that("to_categorical shifts factors by one and counts levels", {
  f <- factor(c("b", "a", "c", "a"), levels = c("a", "b", "c", "d"))
  y <- to_categorical(f)
  expect_identical(dim(y), c(4L, 4L))
  expect_identical(y[1, ], c(0, 1, 0, 0))
  expect_identical(y[2, ], c(1, 0, 0, 0))
  expect_identical(y[3, ], c(0, 0, 1, 0))
  expect_identical(to_categorical(f, num_classes = 3)[, 1:3], y[, 1:3])
})

test_that("to_categorical rejects bad labels with classed errors", {
  expect_error(to_categorical(c(0, 1.5)), class = "rkeras_value_error")
  expect_error(to_categorical(c(0, 1.5)), "whole-number")
  expect_error(to_categorical(c(0, -1)), class = "rkeras_value_error")
  expect_error(to_categorical(c(0, -1)), "0-based")
  expect_error(to_categorical(c(0, 5), num_classes = 3),
               class = "rkeras_value_error")
  expect_error(to_categorical(c(0, 5), num_classes = 3), "too small")
  expect_error(to_categorical(c(0, NA)), class = "rkeras_value_error")
  expect_error(to_categorical(c(0, Inf)), class = "rkeras_value_error")
  expect_error(to_categorical(c("a", "b")), class = "rkeras_value_error")
  expect_error(to_categorical(1, num_classes = 0), class = "rkeras_value_error")
  expect_error(to_categorical(1, num_classes = "3"),
               class = "rkeras_value_error")
  expect_error(to_categorical(integer()), class = "rkeras_value_error")
  expect_identical(dim(to_categorical(integer(), num_classes = 3)), c(0L, 3L))
})

# array_reshape ----------------------------------------------------------------

test_that("array_reshape fills row-major by default", {
  expect_identical(array_reshape(1:6, c(2, 3)),
                   matrix(1:6, nrow = 2, byrow = TRUE))
  expect_identical(array_reshape(1:6, c(2, 3), order = "F"),
                   matrix(1:6, nrow = 2))
  m <- matrix(1:6, nrow = 2, byrow = TRUE)  # rows 1 2 3 / 4 5 6
  expect_identical(array_reshape(m, c(3, 2)),
                   matrix(1:6, nrow = 3, byrow = TRUE))
  expect_identical(as.vector(array_reshape(m, 6)), 1:6)
  expect_identical(dim(array_reshape(m, 6)), 6L)
})

test_that("array_reshape maps x[i, r, c] to column (r - 1) * ncol + c", {
  x <- array(seq_len(2 * 3 * 4) + 0.5, dim = c(2, 3, 4))
  y <- array_reshape(x, c(2, 12))
  expect_type(y, "double")
  for (i in 1:2) for (r in 1:3) for (cc in 1:4) {
    expect_identical(y[i, (r - 1) * 4 + cc], x[i, r, cc])
  }
  # and back again
  expect_identical(array_reshape(y, c(2, 3, 4)), x)
})

test_that("array_reshape general path (first axis changes) is row-major", {
  x <- array(1:24, dim = c(2, 3, 4))
  y <- array_reshape(x, c(4, 6))
  flat_c <- function(a) as.vector(aperm(a, rev(seq_along(dim(a)))))
  expect_identical(flat_c(y), flat_c(x))
  expect_identical(array_reshape(y, c(2, 3, 4)), x)
  z <- array_reshape(x, c(3, 2, 2, 2))
  expect_identical(flat_c(z), flat_c(x))
})

test_that("array_reshape infers one -1 / NA entry and keeps storage type", {
  expect_identical(dim(array_reshape(1:12, c(-1, 4))), c(3L, 4L))
  expect_identical(dim(array_reshape(1:12, c(2, NA))), c(2L, 6L))
  expect_type(array_reshape(c(TRUE, FALSE), c(1, 2)), "logical")
  expect_type(array_reshape(1:4, c(2, 2)), "integer")
  df <- data.frame(a = c(1, 2), b = c(3, 4))
  expect_identical(array_reshape(df, 4), array(c(1, 3, 2, 4), dim = 4))
})

test_that("array_reshape errors are classed", {
  expect_error(array_reshape(1:6, c(4, 2)), class = "rkeras_value_error")
  expect_error(array_reshape(1:6, c(4, 2)), "size 6 into shape \\(4, 2\\)")
  expect_error(array_reshape(1:6, c(-1, -1)), class = "rkeras_value_error")
  expect_error(array_reshape(1:6, c(-1, 4)), class = "rkeras_value_error")
  expect_error(array_reshape(list(1, 2), 2), class = "rkeras_value_error")
  expect_error(array_reshape(1:6, "a"), class = "rkeras_value_error")
})

# normalize --------------------------------------------------------------------

test_that("normalize divides by the L2 norm along the last axis", {
  x <- rbind(c(3, 4), c(1, 0), c(0, 0))
  expect_equal(normalize(x), rbind(c(0.6, 0.8), c(1, 0), c(0, 0)))
  expect_equal(normalize(x, axis = 2), normalize(x))
  expect_equal(normalize(x, axis = 1),
               rbind(c(3, 4) / c(sqrt(10), 4), c(1, 0) / c(sqrt(10), 4),
                     c(0, 0)))
  expect_equal(normalize(x, axis = -2), normalize(x, axis = 1))
})

test_that("normalize supports other orders and vectors", {
  expect_equal(normalize(c(1, 1, 2), order = 1), c(0.25, 0.25, 0.5))
  expect_equal(normalize(c(-3, 1), order = Inf), c(-1, 1 / 3))
  expect_equal(normalize(c(3, 4)), c(0.6, 0.8))
  expect_equal(normalize(c(1, 2), order = 3), c(1, 2) / 9^(1 / 3))
  expect_identical(normalize(c(0, 0)), c(0, 0))
  expect_type(normalize(1:2), "double")
})

test_that("normalize works on 3-d arrays along any axis", {
  set.seed(1)
  x <- array(rnorm(24), dim = c(2, 3, 4))
  y <- normalize(x, axis = 2)
  for (i in 1:2) for (k in 1:4) {
    expect_equal(y[i, , k], x[i, , k] / sqrt(sum(x[i, , k]^2)))
  }
  y <- normalize(x)  # last axis
  expect_equal(y[2, 3, ], x[2, 3, ] / sqrt(sum(x[2, 3, ]^2)))
  expect_identical(dim(y), dim(x))
})

test_that("normalize errors are classed", {
  expect_error(normalize(matrix(1:4, 2), axis = 0), class = "rkeras_value_error")
  expect_error(normalize(matrix(1:4, 2), axis = 0), "1-based")
  expect_error(normalize(matrix(1:4, 2), axis = 3), class = "rkeras_value_error")
  expect_error(normalize(c("a", "b")), class = "rkeras_value_error")
  expect_error(normalize(1:3, order = 0), class = "rkeras_value_error")
})
