# Merge layers: add, subtract, multiply, average, maximum, minimum, concatenate, dot.
# Eager values against base R, functional models, the ways of passing inputs, errors, and
# the group-10 conformance fixtures.

set.seed(7)
a <- matrix(round(rnorm(12), 3), nrow = 3)
b <- matrix(round(rnorm(12), 3), nrow = 3)
c3 <- matrix(round(rnorm(12), 3), nrow = 3)

test_that("elementwise merge layers match base R", {
  expect_equal(as.array(layer_add(list(a, b))), a + b, tolerance = 1e-6)
  expect_equal(as.array(layer_add(list(a, b, c3))), a + b + c3, tolerance = 1e-6)
  expect_equal(as.array(layer_subtract(list(a, b))), a - b, tolerance = 1e-6)
  expect_equal(as.array(layer_multiply(list(a, b))), a * b, tolerance = 1e-6)
  expect_equal(as.array(layer_average(list(a, b, c3))), (a + b + c3) / 3, tolerance = 1e-6)
  expect_equal(as.array(layer_maximum(list(a, b))), pmax(a, b), tolerance = 1e-6)
  expect_equal(as.array(layer_minimum(list(a, b, c3))), pmin(a, b, c3), tolerance = 1e-6)
})

test_that("merge layers take inputs as a list, in ..., or later as a layer instance", {
  expect_equal(as.array(layer_add(a, b)), a + b, tolerance = 1e-6)
  layer <- layer_multiply()
  expect_s3_class(layer, "keras.src.layers.merging.multiply.Multiply")
  expect_equal(as.array(layer(list(a, b))), a * b, tolerance = 1e-6)
  named <- layer_add(name = "my_add")
  expect_identical(named$name, "my_add")
})

test_that("layer_concatenate joins along a 1-based axis", {
  expect_equal(as.array(layer_concatenate(list(a, b))), cbind(a, b), tolerance = 1e-6)
  expect_equal(as.array(layer_concatenate(list(a, b), axis = 2)), cbind(a, b), tolerance = 1e-6)
  expect_equal(as.array(layer_concatenate(list(a, b), axis = 1)), rbind(a, b), tolerance = 1e-6)
  expect_identical(rk_state(layer_concatenate(axis = 2))$config$axis, 1L)
  expect_identical(rk_state(layer_concatenate())$config$axis, -1L)
  expect_error(layer_concatenate(axis = 0), "1-based", class = "rkeras_value_error")
})

test_that("layer_dot computes per-sample dot products, optionally normalised", {
  out <- as.array(layer_dot(list(a, b), axes = 2))
  expect_equal(dim(out), c(3L, 1L))
  expect_equal(as.vector(out), rowSums(a * b), tolerance = 1e-5)
  cosine <- rowSums(a * b) / sqrt(rowSums(a^2) * rowSums(b^2))
  expect_equal(as.vector(as.array(layer_dot(list(a, b), axes = -1, normalize = TRUE))), cosine,
               tolerance = 1e-5)
  # 3-D: batched matrix product contracting the last axes
  x <- array(round(rnorm(2 * 3 * 4), 3), c(2, 3, 4))
  y <- array(round(rnorm(2 * 5 * 4), 3), c(2, 5, 4))
  out3 <- as.array(layer_dot(list(x, y), axes = c(3, 3)))
  expect_equal(dim(out3), c(2L, 3L, 5L))
  for (i in 1:2) expect_equal(out3[i, , ], x[i, , ] %*% t(y[i, , ]), tolerance = 1e-5)
  expect_identical(rk_state(layer_dot(axes = c(3, 3)))$config$axes, c(2L, 2L))
  expect_error(layer_dot(list(a, b)), "`axes` is missing", class = "rkeras_value_error")
  expect_error(layer_dot(axes = 0), class = "rkeras_value_error")
  expect_error(layer_dot(axes = c(1, 2, 3)), "one axis or a pair", class = "rkeras_value_error")
  expect_error(layer_dot(axes = 2, normalize = "yes"), "`normalize`", class = "rkeras_type_error")
})

test_that("merge layers build functional models with several inputs", {
  in_a <- keras_input(shape = 4, name = "in_a")
  in_b <- keras_input(shape = 4, name = "in_b")
  added <- layer_add(list(in_a, in_b))
  expect_equal(dim(added), c(NA, 4L))
  cat_out <- layer_concatenate(list(in_a, added))
  expect_equal(dim(cat_out), c(NA, 8L))
  model <- keras_model(list(in_a, in_b), cat_out)
  expect_equal(as.array(model(list(a, b))), cbind(a, a + b), tolerance = 1e-6)
  expect_equal(predict(model, list(a, b), verbose = 0), cbind(a, a + b), tolerance = 1e-6)
})

test_that("merge layers refuse incompatible shapes with a classed error", {
  in_a <- keras_input(shape = 4)
  in_b <- keras_input(shape = 5)
  expect_error(layer_add(list(in_a, in_b)), class = "rkeras_error")
  expect_error(layer_concatenate(list(keras_input(shape = c(2, 3)), keras_input(shape = c(4, 5)))),
               class = "rkeras_error")
})

# ---- conformance: group 10 --------------------------------------------------------------

merge_builders <- list(
  Add = function(xs, cfg) layer_add(xs, name = cfg$name),
  Average = function(xs, cfg) layer_average(xs, name = cfg$name),
  Maximum = function(xs, cfg) layer_maximum(xs, name = cfg$name),
  Multiply = function(xs, cfg) layer_multiply(xs, name = cfg$name),
  Concatenate = function(xs, cfg) layer_concatenate(xs, axis = if (cfg$axis >= 0) cfg$axis + 1 else cfg$axis,
                                                    name = cfg$name),
  # Keras axes count the batch axis as 0; keras3's R axes are 1-based
  Dot = function(xs, cfg) {
    ax <- unlist(cfg$axes)
    layer_dot(xs, axes = ifelse(ax >= 0, ax + 1, ax), normalize = isTRUE(cfg$normalize), name = cfg$name)
  }
)

build_functional_case <- function(case) {
  tensors <- list()
  for (l in case$layers) {
    cfg <- l$config
    if (l$class_name == "InputLayer") {
      shape <- unlist(lapply(cfg$batch_input_shape[-1L], function(d) if (is.null(d)) NA else d))
      tensors[[cfg$name]] <- keras_input(shape = shape, name = cfg$name)
      next
    }
    inbound <- vapply(l$inbound_nodes[[1L]], function(n) n[[1L]], "")
    xs <- unname(tensors[inbound])
    tensors[[cfg$name]] <- if (l$class_name == "Dense") {
      layer_dense(xs[[1L]], units = cfg$units, activation = cfg$activation, use_bias = cfg$use_bias,
                  name = cfg$name)
    } else {
      merge_builders[[l$class_name]](xs, cfg)
    }
  }
  inputs <- unname(tensors[unlist(case$model$input_names)])
  outputs <- unname(tensors[unlist(case$model$output_names)])
  model <- keras_model(inputs, if (length(outputs) == 1L) outputs[[1L]] else outputs)
  if (length(case$weights)) {
    w <- fixture_weights(case)
    paths <- vapply(model$weights, function(v) v$path, "")
    expect_setequal(paths, names(w))
    set_weights(model, unname(w[paths]))
  }
  model
}

for (id in c("10_merge_add", "10_merge_average", "10_merge_concatenate", "10_merge_dot_3d_axes2",
             "10_merge_dot_axes1", "10_merge_maximum", "10_merge_multiply")) {
  local({
    case_id <- id
    test_that(paste("conformance", case_id), {
      case <- conformance_case(case_id)
      model <- build_functional_case(case)
      xs <- lapply(case$inputs, fixture_array)
      expected <- fixture_array(case$outputs[[1L]])
      expect_fixture_equal(model(xs), expected, case$tolerance)
      expect_fixture_equal(predict(model, xs, verbose = 0), expected, case$tolerance)
    })
  })
}
