# Run `code` with KERAS_HOME pointing at `home` and the config re-read;
# KERAS_HOME, KERAS_BACKEND and the config state are restored afterwards.
local_keras_home <- function(home, backend_env = NA, envir = parent.frame()) {
  old_home <- Sys.getenv("KERAS_HOME", NA)
  old_backend <- Sys.getenv("KERAS_BACKEND", NA)
  old_state <- rk_config_snapshot()
  Sys.setenv(KERAS_HOME = home)
  if (is.na(backend_env)) Sys.unsetenv("KERAS_BACKEND")
  else Sys.setenv(KERAS_BACKEND = backend_env)
  rk_config_reset()
  restore <- function() {
    if (is.na(old_home)) Sys.unsetenv("KERAS_HOME")
    else Sys.setenv(KERAS_HOME = old_home)
    if (is.na(old_backend)) Sys.unsetenv("KERAS_BACKEND")
    else Sys.setenv(KERAS_BACKEND = old_backend)
    rk_config_restore(old_state)
  }
  # run at exit of the caller's frame, last registered first
  do.call(on.exit, list(bquote(.(restore)()), add = TRUE, after = FALSE),
          envir = envir)
  invisible(home)
}

new_home <- function(json = NULL) {
  home <- tempfile("keras_home_")
  dir.create(home)
  if (!is.null(json)) writeLines(json, file.path(home, "keras.json"))
  home
}

test_that("defaults without keras.json", {
  local_keras_home(new_home())
  expect_identical(config_floatx(), "float32")
  expect_identical(config_epsilon(), 1e-7)
  expect_identical(config_image_data_format(), "channels_last")
  expect_true(config_backend() %in% c("cpu", "cuda"))
})

test_that("keras.json under KERAS_HOME is read (Keras's own layout)", {
  local_keras_home(new_home(c(
    "{",
    '    "floatx": "float64",',
    '    "epsilon": 1e-05,',
    '    "backend": "tensorflow",',
    '    "image_data_format": "channels_first"',
    "}")))
  expect_identical(config_floatx(), "float64")
  expect_identical(config_epsilon(), 1e-5)
  expect_identical(config_image_data_format(), "channels_first")
  # "tensorflow" means best available; this build without CUDA gives "cpu"
  if (!rk_cuda_available()) expect_identical(config_backend(), "cpu")
})

test_that("keras.json is read once, lazily", {
  home <- new_home('{"floatx": "float64"}')
  local_keras_home(home)
  expect_identical(config_floatx(), "float64")
  writeLines('{"floatx": "float32"}', file.path(home, "keras.json"))
  expect_identical(config_floatx(), "float64")
  rk_config_reset()
  expect_identical(config_floatx(), "float32")
})

test_that("invalid values or files in keras.json warn and fall back", {
  local_keras_home(new_home('{"floatx": "float16", "epsilon": "x"}'))
  expect_warning(
    expect_warning(fx <- config_floatx(), "\"floatx\"",
                   class = "rkeras_config_warning"),
    "\"epsilon\"", class = "rkeras_config_warning")
  expect_identical(fx, "float32")
  expect_identical(config_epsilon(), 1e-7)

  local_keras_home(new_home("not json"))
  expect_warning(config_floatx(), "not a flat JSON object")
})

test_that("setters change the session and validate their input", {
  local_keras_home(new_home())
  config_set_floatx("float64")
  expect_identical(config_floatx(), "float64")
  expect_null(config_set_floatx("float32"))
  expect_error(config_set_floatx("float16"), class = "rkeras_value_error")
  expect_error(config_set_floatx("int32"), class = "rkeras_value_error")
  expect_error(config_set_floatx(32), class = "rkeras_value_error")
  expect_identical(config_floatx(), "float32")

  config_set_epsilon(1e-3)
  expect_identical(config_epsilon(), 1e-3)
  expect_error(config_set_epsilon(-1), class = "rkeras_value_error")
  expect_error(config_set_epsilon("a"), class = "rkeras_value_error")

  config_set_image_data_format("channels_first")
  expect_identical(config_image_data_format(), "channels_first")
  expect_error(config_set_image_data_format("nchw"),
               class = "rkeras_value_error")
})

test_that("setters never write keras.json", {
  home <- new_home()
  local_keras_home(home)
  config_set_floatx("float64")
  config_set_epsilon(1e-4)
  expect_false(file.exists(file.path(home, "keras.json")))
})

test_that("backend: cpu/cuda, KERAS_BACKEND, and Python names", {
  skip_if(rk_cuda_available(), "CUDA is available here")
  local_keras_home(new_home('{"backend": "cuda"}'))
  expect_warning(b <- config_backend(), class = "rkeras_config_warning")
  expect_identical(b, "cpu")

  local_keras_home(new_home('{"backend": "cuda"}'), backend_env = "cpu")
  expect_silent(expect_identical(config_backend(), "cpu"))

  local_keras_home(new_home(), backend_env = "jax")
  expect_identical(config_backend(), "cpu")

  config_set_backend("cpu")
  expect_identical(config_backend(), "cpu")
  config_set_backend("torch")
  expect_identical(config_backend(), "cpu")
  expect_error(config_set_backend("cuda"), class = "rkeras_value_error")
  expect_error(config_set_backend("mxnet"), class = "rkeras_value_error")
})

test_that("the flat JSON reader handles escapes, numbers and literals", {
  v <- rk_parse_flat_json(
    '{"a": "x\\"y\\\\z\\u00e9", "b": -1.5e-3, "c": true, "d": null, "e": 2}')
  expect_identical(v$a, "x\"y\\z\u00e9")
  expect_identical(v$b, -1.5e-3)
  expect_true(v$c)
  expect_true("d" %in% names(v))
  expect_null(v$d)
  expect_identical(v$e, 2)
  expect_identical(rk_parse_flat_json("{}"), list())
  expect_error(rk_parse_flat_json('{"a": [1, 2]}'))
  expect_error(rk_parse_flat_json('{"a": 1,}'))
})
