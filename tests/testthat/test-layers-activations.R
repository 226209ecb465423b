# Activation layers: leaky_relu, parametric_relu, elu, relu, softmax. Values against base R,
# Sequential / functional use, configs, errors, and the group-2 layer conformance fixtures.

m <- matrix(c(-3, -1, -0.2, 0, 0.5, 2, 7, -5), nrow = 2, byrow = TRUE)

test_that("layer_activation_leaky_relu uses negative_slope (default 0.3)", {
  expect_equal(as.array(layer_activation_leaky_relu()(m)), ifelse(m >= 0, m, 0.3 * m), tolerance = 1e-6)
  expect_equal(as.array(layer_activation_leaky_relu(negative_slope = 0.1)(m)), ifelse(m >= 0, m, 0.1 * m),
               tolerance = 1e-6)
  layer <- layer_activation_leaky_relu()
  expect_s3_class(layer, "keras.src.layers.activations.leaky_relu.LeakyReLU")
  expect_identical(rk_state(layer)$config$negative_slope, 0.3)
  expect_error(layer_activation_leaky_relu(negative_slope = -1), "`negative_slope`",
               class = "rkeras_value_error")
})

test_that("layer_activation_elu uses alpha", {
  expect_equal(as.array(layer_activation_elu()(m)), ifelse(m > 0, m, exp(m) - 1), tolerance = 1e-6)
  expect_equal(as.array(layer_activation_elu(alpha = 0.5)(m)), ifelse(m > 0, m, 0.5 * (exp(m) - 1)),
               tolerance = 1e-6)
  expect_error(layer_activation_elu(alpha = "a"), "`alpha`", class = "rkeras_value_error")
})

test_that("layer_activation_relu supports max_value, negative_slope and threshold", {
  expect_equal(as.array(layer_activation_relu()(m)), pmax(m, 0))
  expect_equal(as.array(layer_activation_relu(max_value = 1)(m)), pmin(pmax(m, 0), 1))
  expect_equal(as.array(layer_activation_relu(negative_slope = 0.1)(m)), ifelse(m >= 0, m, 0.1 * m),
               tolerance = 1e-6)
  expect_equal(as.array(layer_activation_relu(threshold = 1)(m)), ifelse(m > 1, m, 0))
  expect_equal(as.array(layer_activation_relu(max_value = 6, negative_slope = 0.1, threshold = 0.5)(m)),
               ifelse(m > 0.5, pmin(m, 6), 0.1 * (m - 0.5)), tolerance = 1e-6)
  cfg <- rk_state(layer_activation_relu(max_value = 6))$config
  expect_identical(cfg[c("max_value", "negative_slope", "threshold")],
                   list(max_value = 6, negative_slope = 0, threshold = 0))
  expect_error(layer_activation_relu(max_value = -1), "`max_value`", class = "rkeras_value_error")
  expect_error(layer_activation_relu(threshold = NA), "`threshold`", class = "rkeras_value_error")
})

test_that("layer_activation_softmax normalises along a 1-based axis", {
  rows <- t(apply(m, 1, function(r) exp(r) / sum(exp(r))))
  cols <- apply(m, 2, function(cl) exp(cl) / sum(exp(cl)))
  expect_equal(as.array(layer_activation_softmax()(m)), rows, tolerance = 1e-6)
  expect_equal(as.array(layer_activation_softmax(axis = 1)(m)), cols, tolerance = 1e-6)
  expect_identical(rk_state(layer_activation_softmax(axis = 2))$config$axis, 1L)
  expect_error(layer_activation_softmax(axis = 0), "1-based", class = "rkeras_value_error")
})

test_that("layer_activation_parametric_relu learns one slope per unit, optionally shared", {
  model <- keras_model_sequential(input_shape = 4) |> layer_activation_parametric_relu()
  w <- get_weights(model)
  expect_length(w, 1L)
  expect_equal(as.vector(w[[1L]]), rep(0, 4))       # alpha_initializer = "Zeros"
  alpha <- c(0.1, 0.2, 0.3, 0.4)
  set_weights(model, list(alpha))
  expected <- ifelse(m >= 0, m, m * matrix(alpha, 2, 4, byrow = TRUE))
  expect_equal(as.array(model(m)), expected, tolerance = 1e-6)

  shared <- keras_model_sequential(input_shape = c(3, 2)) |>
    layer_activation_parametric_relu(shared_axes = 2)
  expect_equal(as.integer(dim(get_weights(shared)[[1L]]) %||% length(get_weights(shared)[[1L]])),
               c(1L, 2L))
  expect_identical(rk_state(layer_activation_parametric_relu(shared_axes = c(2, 3)))$config$shared_axes,
                   c(1L, 2L))
  expect_error(layer_activation_parametric_relu(shared_axes = 1), "batch axis", class = "rkeras_value_error")
  expect_error(layer_activation_parametric_relu(shared_axes = 0), class = "rkeras_value_error")
  expect_error(layer_activation_parametric_relu(alpha_initializer = "nope"), "`alpha_initializer`",
               class = "rkeras_value_error")
  expect_error(layer_activation_parametric_relu(alpha_constraint = "nope"), "`alpha_constraint`",
               class = "rkeras_value_error")
  p2 <- keras_model_sequential(input_shape = 3) |>
    layer_activation_parametric_relu(alpha_initializer = initializer_constant(0.25))
  expect_equal(as.vector(get_weights(p2)[[1L]]), rep(0.25, 3))
})

test_that("activation layers work in functional models", {
  inp <- keras_input(shape = 4)
  out <- inp |> layer_activation_leaky_relu(negative_slope = 0.2) |> layer_activation_softmax()
  model <- keras_model(inp, out)
  z <- ifelse(m >= 0, m, 0.2 * m)
  expected <- t(apply(z, 1, function(r) exp(r) / sum(exp(r))))
  expect_equal(predict(model, m, verbose = 0), expected, tolerance = 1e-5)
})

# ---- conformance: group 2 activation layers ------------------------------------------------

activation_layer_builders <- list(
  Activation = function(model, cfg) layer_activation(model, activation = cfg$activation, name = cfg$name),
  ELU = function(model, cfg) layer_activation_elu(model, alpha = cfg$alpha %||% 1, name = cfg$name),
  LeakyReLU = function(model, cfg)
    layer_activation_leaky_relu(model, negative_slope = cfg$negative_slope %||% cfg$alpha %||% 0.3,
                                name = cfg$name),
  PReLU = function(model, cfg) layer_activation_parametric_relu(model, name = cfg$name),
  # Keras axes count the batch axis as 0; keras3's R axes are 1-based
  Softmax = function(model, cfg) {
    ax <- unlist(cfg$axis %||% -1)
    layer_activation_softmax(model, axis = ifelse(ax >= 0, ax + 1, ax), name = cfg$name)
  }
)

for (id in c("02_layer_activation_layer_tanh", "02_layer_elu_layer", "02_layer_leaky_relu",
             "02_layer_leaky_relu_a0.1", "02_layer_prelu", "02_layer_softmax_layer")) {
  local({
    case_id <- id
    test_that(paste("conformance", case_id), {
      case <- conformance_case(case_id)
      x <- fixture_array(case$inputs[[1L]])
      model <- keras_model_sequential(input_shape = dim(x)[-1L])
      for (l in case$layers) {
        cfg <- l$config
        if (l$class_name == "Dense") {
          layer_dense(model, units = cfg$units, activation = cfg$activation, use_bias = cfg$use_bias,
                      name = cfg$name)
        } else {
          activation_layer_builders[[l$class_name]](model, cfg)
        }
      }
      w <- fixture_weights(case)
      paths <- vapply(model$weights, function(v) v$path, "")
      expect_setequal(paths, names(w))
      set_weights(model, unname(w[paths]))
      expected <- fixture_array(case$outputs[[1L]])
      expect_fixture_equal(model(x), expected, case$tolerance)
      expect_fixture_equal(predict(model, x, verbose = 0), expected, case$tolerance)
    })
  })
}
