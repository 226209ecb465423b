# rkeras_variable: the weights of layers.

test_that("variables expose name, path, shape, dtype and their values", {
  d <- layer_dense(units = 3, name = "var_dense", kernel_initializer = "ones")
  d(matrix(0, 1, 2))
  v <- d$weights[[1]]
  expect_s3_class(v, "rkeras_variable")
  expect_equal(v$name, "kernel")
  expect_equal(v$path, "var_dense/kernel")
  expect_identical(dim(v), c(2L, 3L))
  expect_equal(v$dtype, "float32")
  expect_true(v$trainable)
  expect_equal(as.array(v), matrix(1, 2, 3))
  expect_equal(length(v), 6L)
  b <- d$weights[[2]]
  expect_identical(dim(as.array(b)), 3L)
  expect_equal(format(v), "<Variable path=var_dense/kernel, shape=(2, 3), dtype=float32, value=[1 1 1 1 ...]>")
  expect_equal(format(b), "<Variable path=var_dense/bias, shape=(3,), dtype=float32, value=[0 0 0]>")
  expect_output(print(v), "<Variable path=var_dense/kernel, shape=(2, 3)", fixed = TRUE)
})

test_that("assignment copies values in place and checks shapes", {
  v <- rk_new_variable(rk_tensor(matrix(0, 2, 2), dtype = "float32"), name = "w", path = "l/w")
  t0 <- v$tensor
  rk_variable_assign(v, matrix(1:4, 2))
  expect_identical(v$tensor, t0)
  expect_equal(as.array(t0), matrix(1:4, 2) + 0)
  expect_equal(rk_tensor_dtype(v$tensor), "float32")
  expect_error(rk_variable_assign(v, matrix(0, 3, 2)), class = "rkeras_shape_error",
               regexp = "Variable l/w has shape \\(2, 2\\), but the value has shape \\(3, 2\\)")
  expect_error(rk_variable_assign(v, matrix("a", 2, 2)), class = "rkeras_type_error")
  expect_error(rk_variable_assign(v, matrix(NA_real_, 2, 2)), class = "rkeras_value_error")
  expect_equal(as.array(v), matrix(1:4, 2) + 0)
  rk_variable_assign(v, rk_tensor(matrix(5, 2, 2)))   # float64 tensor is cast
  expect_equal(as.array(v), matrix(5, 2, 2))
})

test_that("rk_tensor_assign refuses shape mismatches at the engine level too", {
  a <- rk_tensor(c(1, 2, 3), dtype = "float32")
  expect_error(rk_tensor_assign(a, rk_tensor(c(1, 2), dtype = "float32")), class = "rkeras_shape_error")
  rk_tensor_assign(a, rk_tensor(c(7, 8, 9)))
  expect_equal(as.array(a), array(c(7, 8, 9)))
})

test_that("rk_xptr_is_null detects pointers lost by serialisation", {
  d <- layer_dense(units = 1)
  d(matrix(0, 1, 1))
  steps <- rk_layer_engine_nodes(rk_state(d), list(c(NA_integer_, 1L)))
  xp <- steps[[1]]$layer
  expect_false(rk_xptr_is_null(xp))
  expect_true(rk_xptr_is_null(unserialize(serialize(xp, NULL))))
  expect_true(rk_xptr_is_null(1))
})
