test_that("each Python-bridge function is a no-op with a one-time message", {
  rk_reset_python_noop_messages()
  on.exit(rk_reset_python_noop_messages(), add = TRUE)
  calls <- list(
    install_keras = function() install_keras(),
    py_require = function() py_require("scipy"),
    use_python = function() use_python("/usr/bin/python3", required = TRUE),
    use_virtualenv = function() use_virtualenv("r-keras"),
    use_condaenv = function() use_condaenv("r-keras"),
    use_backend = function() use_backend("tensorflow")
  )
  for (nm in names(calls)) {
    expect_message(res <- calls[[nm]](), class = "rkeras_message")
    expect_null(res)
    # second call: silent
    expect_silent(calls[[nm]]())
  }
})

test_that("the message says that no Python is needed and names the function", {
  rk_reset_python_noop_messages()
  on.exit(rk_reset_python_noop_messages(), add = TRUE)
  expect_message(install_keras(envname = "x", backend = "jax", gpu = TRUE),
                 "`install_keras\\(\\)` does nothing.*needs no Python")
  expect_message(use_virtualenv(), "once per session")
})

test_that("is_keras_available() is TRUE", {
  rk_reset_python_noop_messages()
  on.exit(rk_reset_python_noop_messages(), add = TRUE)
  expect_message(res <- is_keras_available(), class = "rkeras_message")
  expect_true(res)
  expect_true(suppressMessages(is_keras_available("3.0")))
})

test_that("the messages can be silenced with suppressMessages()", {
  rk_reset_python_noop_messages()
  on.exit(rk_reset_python_noop_messages(), add = TRUE)
  expect_silent(suppressMessages(install_keras()))
})

test_that("use_backend('cpu') selects the rkeras backend silently", {
  old <- rk_config_snapshot()
  on.exit(rk_config_restore(old), add = TRUE)
  expect_silent(use_backend("cpu"))
  expect_identical(config_backend(), "cpu")
})

test_that("is_keras_available() says why it is TRUE", {
  rk_reset_python_noop_messages()
  on.exit(rk_reset_python_noop_messages(), add = TRUE)
  expect_message(is_keras_available(), "is always TRUE.*needs no Python")
})
