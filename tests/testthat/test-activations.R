# activation_*() functions: values against base-R formulas, options, input types, gradients,
# identifiers accepted by layers, errors, and the group-2 conformance fixtures (Dense with
# each activation string).

# as.array() of a rank-1 tensor keeps a 1-d dim; compare plain vectors.
av <- function(t) {
  a <- as.array(t)
  if (length(dim(a)) == 1L) as.vector(a) else a
}

x <- c(-6, -3, -1.5, -0.5, -0.1, 0, 0.2, 0.7, 1, 2.5, 4, 7)

sigm <- function(v) 1 / (1 + exp(-v))
softplus_r <- function(v) log1p(exp(v))
selu_alpha <- 1.6732632423543772
selu_scale <- 1.0507009873554805
erf_r <- function(v) 2 * pnorm(v * sqrt(2)) - 1

reference <- list(
  relu = function(v) pmax(v, 0),
  sigmoid = sigm,
  softmax = function(v) exp(v) / sum(exp(v)),
  tanh = tanh,
  linear = function(v) v,
  elu = function(v) ifelse(v > 0, v, exp(v) - 1),
  selu = function(v) selu_scale * ifelse(v > 0, v, selu_alpha * (exp(v) - 1)),
  softplus = softplus_r,
  softsign = function(v) v / (abs(v) + 1),
  gelu = function(v) 0.5 * v * (1 + erf_r(v / sqrt(2))),
  silu = function(v) v * sigm(v),
  swish = function(v) v * sigm(v),
  mish = function(v) v * tanh(softplus_r(v)),
  exponential = exp,
  leaky_relu = function(v) ifelse(v >= 0, v, 0.2 * v),
  hard_sigmoid = function(v) pmin(pmax(v + 3, 0), 6) / 6,
  hard_silu = function(v) v * pmin(pmax(v + 3, 0), 6) / 6,
  hard_swish = function(v) v * pmin(pmax(v + 3, 0), 6) / 6,
  log_softmax = function(v) v - log(sum(exp(v))),
  relu6 = function(v) pmin(pmax(v, 0), 6),
  hard_tanh = function(v) pmin(pmax(v, -1), 1),
  log_sigmoid = function(v) -softplus_r(-v),
  celu = function(v) pmax(v, 0) + pmin(exp(v) - 1, 0),
  tanh_shrink = function(v) v - tanh(v),
  soft_shrink = function(v) ifelse(v > 0.5, v - 0.5, ifelse(v < -0.5, v + 0.5, 0)),
  hard_shrink = function(v) ifelse(abs(v) > 0.5, v, 0),
  squareplus = function(v) (v + sqrt(v^2 + 4)) / 2,
  sparse_plus = function(v) ifelse(v <= -1, 0, ifelse(v >= 1, v, (v + 1)^2 / 4))
)

test_that("every activation name has an activation_<name>() function and a reference here", {
  expect_setequal(rk_activation_names(), names(reference))
  for (nm in rk_activation_names()) {
    expect_true(is.function(get(paste0("activation_", nm), envir = asNamespace("rkeras"))), info = nm)
  }
})

test_that("activation_*() match their base-R definitions on float64 input", {
  for (nm in names(reference)) {
    f <- get(paste0("activation_", nm), envir = asNamespace("rkeras"))
    out <- f(x)
    expect_s3_class(out, "rkeras_tensor")
    expect_equal(av(out), reference[[nm]](x), tolerance = 1e-6, info = nm)
  }
})

test_that("activations keep float32 tensors in float32 and convert integer input to floatx", {
  t32 <- rk_tensor(x, dtype = "float32")
  out <- activation_sigmoid(t32)
  expect_equal(rk_tensor_dtype(out), "float32")
  expect_equal(av(out), sigm(x), tolerance = 1e-6)
  out_i <- activation_relu(c(-2L, 0L, 3L))
  expect_equal(rk_tensor_dtype(out_i), config_floatx())
  expect_equal(av(out_i), c(0, 0, 3))
})

test_that("activation_relu supports negative_slope, max_value and threshold as Keras does", {
  expect_equal(av(activation_relu(x, max_value = 6)), pmin(pmax(x, 0), 6))
  expect_equal(av(activation_relu(x, max_value = 2.5)), pmin(pmax(x, 0), 2.5))
  expect_equal(av(activation_relu(x, negative_slope = 0.1)), ifelse(x >= 0, x, 0.1 * x))
  expect_equal(av(activation_relu(x, threshold = 1)), ifelse(x > 1, x, 0))
  expect_equal(av(activation_relu(x, negative_slope = 0.1, max_value = 6, threshold = 0.5)),
               ifelse(x > 0.5, pmin(x, 6), 0.1 * (x - 0.5)))
  expect_equal(av(activation_leaky_relu(x, negative_slope = 0.3)), ifelse(x >= 0, x, 0.3 * x))
  expect_equal(av(activation_elu(x, alpha = 0.5)), ifelse(x > 0, x, 0.5 * (exp(x) - 1)))
  expect_equal(av(activation_celu(x, alpha = 2)), pmax(x, 0) + pmin(2 * (exp(x / 2) - 1), 0))
  expect_equal(av(activation_soft_shrink(x, threshold = 1)),
               ifelse(x > 1, x - 1, ifelse(x < -1, x + 1, 0)))
  expect_equal(av(activation_hard_shrink(x, threshold = 1)), ifelse(abs(x) > 1, x, 0))
  expect_equal(av(activation_squareplus(x, b = 1)), (x + sqrt(x^2 + 1)) / 2)
})

test_that("activation_gelu approximate = TRUE is the tanh form", {
  approx <- 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
  expect_equal(av(activation_gelu(x, approximate = TRUE)), approx, tolerance = 1e-6)
})

test_that("softmax and log_softmax normalise along the requested 1-based axis", {
  m <- matrix(c(1, 2, 3, -1, 0, 4), nrow = 2, byrow = TRUE)
  rows <- t(apply(m, 1, function(r) exp(r) / sum(exp(r))))
  cols <- apply(m, 2, function(cl) exp(cl) / sum(exp(cl)))
  expect_equal(av(activation_softmax(m)), rows, tolerance = 1e-7)
  expect_equal(av(activation_softmax(m, axis = 2)), rows, tolerance = 1e-7)
  expect_equal(av(activation_softmax(m, axis = 1)), cols, tolerance = 1e-7)
  expect_equal(av(activation_log_softmax(m, axis = 1)), log(cols), tolerance = 1e-7)
  expect_error(activation_softmax(m, axis = 0), class = "rkeras_error")
  expect_error(activation_softmax(m, axis = 3), class = "rkeras_error")
})

test_that("gradients flow through activation functions", {
  w <- rk_tensor(c(-1, 0.5, 2), requires_grad = TRUE)
  rk_backward(sum(activation_sigmoid(w)))
  s <- sigm(c(-1, 0.5, 2))
  expect_equal(av(rk_grad(w)), s * (1 - s), tolerance = 1e-7)

  w2 <- rk_tensor(c(-1, 0.5, 2), requires_grad = TRUE)
  rk_backward(sum(activation_relu(w2, max_value = 1)))
  expect_equal(av(rk_grad(w2)), c(0, 1, 0))
})

test_that("bad arguments give classed errors before any work", {
  expect_error(activation_relu("a"), "`x` must be a numeric array", class = "rkeras_type_error")
  expect_error(activation_relu(x, max_value = "a"), "`max_value`", class = "rkeras_value_error")
  expect_error(activation_relu(x, negative_slope = -1), "`negative_slope`", class = "rkeras_value_error")
  expect_error(activation_elu(x, alpha = NA), "`alpha`", class = "rkeras_value_error")
  expect_error(activation_gelu(x, approximate = NA), "`approximate`", class = "rkeras_type_error")
  expect_error(activation_celu(x, alpha = 0), "`alpha` must be positive", class = "rkeras_value_error")
})

test_that("activation identifiers: names, activation functions and R functions", {
  expect_identical(rk_check_activation(NULL), "linear")
  expect_identical(rk_check_activation("relu"), "relu")
  expect_identical(rk_check_activation(activation_relu), "relu")
  expect_identical(rk_check_activation(activation_swish), "swish")
  expect_identical(rk_check_activation(activation_silu), "silu")
  f <- function(x) x * 2
  expect_identical(rk_check_activation(f), f)
  expect_error(rk_check_activation("relux"), "unknown activation \"relux\".*\"relu\", \"sigmoid\"",
               class = "rkeras_value_error")
  expect_error(rk_check_activation(3), "must be a single string or a function", class = "rkeras_type_error")
  expect_error(rk_check_activation(c("relu", "tanh")), class = "rkeras_type_error")
})

test_that("each activation string works in layer_activation() and matches activation_<name>()", {
  m <- matrix(x, nrow = 2, byrow = TRUE)
  for (nm in rk_activation_names()) {
    layer <- layer_activation(activation = nm)
    out <- layer(m)
    expected <- av(get(paste0("activation_", nm), envir = asNamespace("rkeras"))(rk_tensor(m, dtype = "float32")))
    expect_equal(av(out), expected, tolerance = 1e-5, info = nm)
  }
})

test_that("unknown activation strings are refused by layers before anything is built", {
  model <- keras_model_sequential(input_shape = 3)
  expect_error(layer_dense(model, 2, activation = "rleu"), "unknown activation \"rleu\"",
               class = "rkeras_value_error")
  expect_length(model$layers, 0L)
  expect_error(layer_activation(activation = "nope"), class = "rkeras_value_error")
})

# ---- conformance: group 2, Dense(5, activation = <name>) ---------------------------------

run_dense_activation_case <- function(id) {
  case <- conformance_case(id)
  cfg <- case$layers[[1L]]$config
  x <- fixture_array(case$inputs[[1L]])
  expected <- fixture_array(case$outputs[[1L]])
  model <- keras_model_sequential(input_shape = dim(x)[-1L]) |>
    layer_dense(units = cfg$units, activation = cfg$activation, use_bias = cfg$use_bias,
                name = cfg$name)
  set_weights(model, unname(fixture_weights(case)))
  expect_fixture_equal(model(x), expected, case$tolerance)
  expect_fixture_equal(predict(model, x, verbose = 0), expected, case$tolerance)
}

for (id in c("02_act_elu", "02_act_gelu", "02_act_linear", "02_act_log_softmax", "02_act_relu",
             "02_act_selu", "02_act_sigmoid", "02_act_softmax", "02_act_softplus", "02_act_swish",
             "02_act_tanh")) {
  local({
    case_id <- id
    test_that(paste("conformance", case_id), {
      run_dense_activation_case(case_id)
    })
  })
}
