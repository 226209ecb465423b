# Models: Sequential and functional construction, calling, layer access, weights, freezing,
# and the internal interface used by compile()/fit().

mlp <- function() {
  model <- keras_model_sequential(input_shape = 784)
  model |> layer_dense(256, activation = "relu") |> layer_dense(10, activation = "softmax")
  model
}

test_that("Sequential models have keras3 classes and `$` attributes", {
  model <- mlp()
  expect_equal(class(model)[1:3], c("keras.src.models.sequential.Sequential", "keras.src.models.model.Model",
                                    "keras.src.layers.layer.Layer"))
  expect_true(inherits(model, "rkeras_model"))
  expect_true(model$built)
  expect_length(model$layers, 2)
  expect_match(model$name, "^sequential(_[0-9]+)?$")
  expect_s3_class(model$input, "rkeras_keras_tensor")
  expect_identical(model$input$shape, c(NA_integer_, 784L))
  expect_identical(model$output$shape, c(NA_integer_, 10L))
  expect_identical(model$input_shape, c(NA_integer_, 784L))
  expect_identical(model$output_shape, c(NA_integer_, 10L))
  expect_length(model$weights, 4)
  expect_length(model$trainable_weights, 4)
  expect_length(model$non_trainable_weights, 0)
})

test_that("count_params and get_weights shapes for 784-256-10", {
  model <- mlp()
  expect_equal(count_params(model), 203530)
  w <- get_weights(model)
  expect_equal(lapply(w, dim), list(c(784L, 256L), 256L, c(256L, 10L), 10L))
  expect_true(all(vapply(w, is.double, NA)))
  expect_equal(as.vector(w[[2]]), rep(0, 256))
  lim <- sqrt(6 / (784 + 256))
  expect_true(all(abs(w[[1]]) <= lim + 1e-7))
  expect_gt(sd(w[[1]]), lim / 2)
})

test_that("set_weights round trip, in place, and classed errors leave weights unchanged", {
  model <- mlp()
  w <- get_weights(model)
  set.seed(3)
  w2 <- lapply(w, function(a) array(runif(length(a)), dim = dim(a)))
  expect_invisible(set_weights(model, w2))
  back <- get_weights(model)
  for (i in seq_along(w2)) expect_equal(back[[i]], w2[[i]], tolerance = 1e-6)
  # the variables keep their tensors (engine graphs share them)
  t_before <- model$weights[[1]]$tensor
  set_weights(model, w)
  expect_identical(model$weights[[1]]$tensor, t_before)
  expect_equal(get_weights(model)[[1]], w[[1]], tolerance = 1e-7)
  # wrong count
  expect_error(set_weights(model, w[1:3]), class = "rkeras_value_error",
               regexp = "weight list of length 3, but the layer was expecting 4 weights")
  # wrong shape: names layer, weight and both shapes; nothing changed (even the valid first entry)
  bad <- w2
  bad[[3]] <- matrix(0, 100, 10)
  err <- expect_error(set_weights(model, bad), class = "rkeras_shape_error")
  expect_match(conditionMessage(err), "dense.*kernel.*\\(256, 10\\).*\\(100, 10\\)")
  expect_equal(get_weights(model)[[1]], w[[1]], tolerance = 1e-7)
  # the graph used for training sees the new values
  x <- matrix(runif(784 * 2), 2)
  p1 <- as.array(model(x))
  set_weights(model, lapply(w, function(a) a * 0))
  expect_equal(as.array(model(x)), matrix(0.1, 2, 10), tolerance = 1e-6)
  set_weights(model, w)
  expect_equal(as.array(model(x)), p1, tolerance = 1e-6)
})

test_that("get_weights(trainable =) selects subsets", {
  model <- mlp()
  model$layers[[1]]$trainable <- FALSE
  expect_equal(lapply(get_weights(model, trainable = TRUE), dim), list(c(256L, 10L), 10L))
  expect_equal(lapply(get_weights(model, trainable = FALSE), dim), list(c(784L, 256L), 256L))
  expect_length(get_weights(model), 4)
})

test_that("models are callable on arrays and agree with manual computation", {
  model <- keras_model_sequential(input_shape = 3)
  model |> layer_dense(2, activation = "relu")
  w <- list(matrix(c(1, -1, 2, 0, 1, -2), 3, 2), c(0.5, -0.5))
  set_weights(model, w)
  x <- matrix(c(1, 2, 3, -1, 0, 1), 2, 3, byrow = TRUE)
  y <- model(x)
  expect_s3_class(y, "rkeras_tensor")
  expect_equal(as.array(y), pmax(x %*% w[[1]] + rep(w[[2]], each = 2), 0), tolerance = 1e-6)
  expect_error(model(matrix(0, 2, 4)), class = "rkeras_shape_error", regexp = "expected shape \\(None, 3\\)")
})

test_that("an unbuilt Sequential builds from data (model(x) and rk_model_ensure_built)", {
  model <- keras_model_sequential()
  model |> layer_dense(4) |> layer_dense(2)
  expect_false(model$built)
  expect_error(count_params(model), class = "rkeras_value_error", regexp = "isn't built")
  y <- model(matrix(1, 5, 3))
  expect_equal(dim(y), c(5L, 2L))
  expect_true(model$built)
  expect_equal(count_params(model), 3 * 4 + 4 + 4 * 2 + 2)
  m2 <- keras_model_sequential() |> layer_dense(2)
  rk_model_ensure_built(m2, list(matrix(0, 10, 7)))
  expect_true(m2$built)
  expect_identical(rk_model_input_specs(m2)[[1]]$shape, c(NA_integer_, 7L))
  m3 <- keras_model_sequential()
  expect_error(rk_model_ensure_built(m3, list(matrix(0, 1, 1))), class = "rkeras_value_error")
})

test_that("input_shape on the first layer sets the model input", {
  model <- keras_model_sequential()
  model |> layer_dense(8, input_shape = 5) |> layer_dense(1)
  expect_true(model$built)
  expect_equal(count_params(model), 5 * 8 + 8 + 9)
})

test_that("adding a layer that does not fit is a shape error and leaves the model unchanged", {
  model <- keras_model_sequential(input_shape = 4)
  d <- layer_dense(units = 3)
  d(matrix(0, 1, 10))   # built for 10 features
  expect_error(model |> layer_dense(2) |> d(), class = "rkeras_shape_error", regexp = d$name)
  expect_length(model$layers, 1)
  expect_identical(model$output$shape, c(NA_integer_, 2L))
})

test_that("duplicate layer names in a Sequential model are an error", {
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(2, name = "a")
  expect_error(model |> layer_dense(2, name = "a"), class = "rkeras_value_error", regexp = "unique names")
  expect_length(model$layers, 1)
  expect_error(rk_sequential_add(model, 42), class = "rkeras_type_error")
})

test_that("keras_model_sequential(layers =) and $add()", {
  model <- keras_model_sequential(input_shape = 2, layers = list(layer_dense(units = 3), layer_dense(units = 1)))
  expect_length(model$layers, 2)
  model$add(layer_dense(units = 4))
  expect_length(model$layers, 3)
  expect_identical(model$output$shape, c(NA_integer_, 4L))
  expect_error(keras_model_sequential(foo = 1), class = "rkeras_value_error")
})

test_that("get_layer by name and 1-based index, with Keras's errors", {
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(3, name = "h") |> layer_dense(2, name = "o")
  expect_identical(get_layer(model, "o"), model$layers[[2]])
  expect_identical(get_layer(model, index = 1), model$layers[[1]])
  expect_identical(get_layer(model, index = -1), model$layers[[2]])
  expect_error(get_layer(model, "zz"), class = "rkeras_value_error", regexp = "No such layer: zz. Existing layers are: \\['h', 'o'\\]")
  expect_error(get_layer(model, index = 3), class = "rkeras_value_error",
               regexp = "index 3 but model only has 2 layers")
  expect_error(get_layer(model, index = 0), class = "rkeras_value_error", regexp = "1-based")
  expect_error(get_layer(model), class = "rkeras_value_error")
})

test_that("pop_layer removes the last layer and rebuilds", {
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(3) |> layer_dense(2)
  popped <- pop_layer(model)
  expect_s3_class(popped, "keras.src.layers.core.dense.Dense")
  expect_length(model$layers, 1)
  expect_identical(model$output$shape, c(NA_integer_, 3L))
  expect_equal(dim(model(matrix(0, 2, 4))), c(2L, 3L))
  pop_layer(model)
  expect_error(pop_layer(model), class = "rkeras_value_error", regexp = "no layers")
})

test_that("freeze_weights / unfreeze_weights follow keras3", {
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(3) |> layer_dense(2) |> layer_dense(1)
  freeze_weights(model)
  expect_false(model$trainable)
  expect_length(model$trainable_weights, 0)
  expect_equal(rk_summary_count_line("x", model$non_trainable_weights), " x: 26 (104.00 B)")
  unfreeze_weights(model)
  expect_length(model$trainable_weights, 6)
  freeze_weights(model, from = 2)
  expect_equal(vapply(model$layers, function(l) l$trainable, NA), c(TRUE, FALSE, FALSE))
  unfreeze_weights(model, to = -2)
  expect_equal(vapply(model$layers, function(l) l$trainable, NA), c(TRUE, TRUE, FALSE))
  freeze_weights(model, which = function(l) l$name == model$layers[[1]]$name)
  expect_equal(vapply(model$layers, function(l) l$trainable, NA), c(FALSE, TRUE, TRUE))
  freeze_weights(model, from = model$layers[[2]], to = model$layers[[2]]$name)
  expect_equal(vapply(model$layers, function(l) l$trainable, NA), c(TRUE, FALSE, TRUE))
  expect_error(freeze_weights(model, from = 1, which = 2), class = "rkeras_value_error")
  expect_invisible(freeze_weights(model))
})

test_that("functional models: multiple inputs and outputs, named lists", {
  a <- keras_input(shape = 3, name = "a")
  b <- keras_input(shape = 2, name = "b")
  h <- layer_concatenate(list(a, b))
  o1 <- h |> layer_dense(4, name = "out1")
  o2 <- h |> layer_dense(1, name = "out2")
  model <- keras_model(list(a = a, b = b), list(o1, o2))
  expect_s3_class(model, "keras.src.models.functional.Functional")
  expect_equal(vapply(model$layers, function(l) l$name, ""), c("a", "b", rk_state(model)$op_states[[3]]$name, "out1", "out2"))
  expect_equal(vapply(rk_model_input_specs(model), `[[`, "", "name"), c("a", "b"))
  expect_equal(vapply(rk_model_output_specs(model), `[[`, "", "name"), c("out1", "out2"))
  xa <- matrix(1, 2, 3)
  xb <- matrix(2, 2, 2)
  out <- model(list(xa, xb))
  expect_length(out, 2)
  expect_equal(dim(out[[1]]), c(2L, 4L))
  expect_equal(dim(out[[2]]), c(2L, 1L))
  # named inputs are matched by name
  out2 <- model(list(b = xb, a = xa))
  expect_equal(as.array(out2[[2]]), as.array(out[[2]]), tolerance = 1e-6)
  k <- get_weights(get_layer(model, "out2"))
  expect_equal(as.array(out[[2]]), cbind(xa, xb) %*% k[[1]] + k[[2]][1], tolerance = 1e-5)
  expect_equal(count_params(model), 5 * 4 + 4 + 5 + 1)
})

test_that("a shared layer used twice shares its weights", {
  x1 <- keras_input(shape = 3)
  x2 <- keras_input(shape = 3)
  shared <- layer_dense(units = 2, kernel_initializer = "ones")
  y <- layer_add(list(shared(x1), shared(x2)))
  model <- keras_model(list(x1, x2), y)
  expect_length(model$weights, 2)
  expect_equal(count_params(model), 8)
  out <- as.array(model(list(matrix(1, 1, 3), matrix(2, 1, 3))))
  expect_equal(out, matrix(9, 1, 2), tolerance = 1e-6)
  expect_length(rk_model_variables(model), 2)
})

test_that("a model used as a layer (functional and inside a Sequential)", {
  inner <- keras_model_sequential(input_shape = 3, name = "inner_seq") |> layer_dense(2, kernel_initializer = "ones")
  x <- keras_input(shape = 3)
  y <- inner(x) |> layer_dense(1, kernel_initializer = "ones")
  outer <- keras_model(x, y)
  expect_equal(count_params(outer), 8 + 3)
  expect_equal(as.array(outer(matrix(1, 2, 3))), matrix(6, 2, 1), tolerance = 1e-6)
  expect_true(any(vapply(outer$layers, function(l) identical(l, inner), NA)))
  seq2 <- keras_model_sequential(input_shape = 3)
  seq2 %>% inner %>% layer_dense(1, kernel_initializer = "ones")
  expect_equal(as.array(seq2(matrix(1, 2, 3))), matrix(6, 2, 1), tolerance = 1e-6)
  expect_length(seq2$weights, 4)
  # the nested model's weights are the same variables
  expect_identical(seq2$weights[[1]], inner$weights[[1]])
  # functional model inside a functional model
  x2 <- keras_input(shape = 3)
  outer2 <- keras_model(x2, outer(x2))
  expect_equal(as.array(outer2(matrix(1, 1, 3))), matrix(6, 1, 1), tolerance = 1e-6)
})

test_that("keras_model() errors: disconnected graphs, non-input inputs, bad arguments", {
  a <- keras_input(shape = 2)
  b <- keras_input(shape = 2)
  y <- layer_add(list(a, b))
  expect_error(keras_model(a, y), class = "rkeras_value_error", regexp = "Graph disconnected")
  h <- a |> layer_dense(2)
  expect_error(keras_model(h, h |> layer_dense(1)), class = "rkeras_value_error", regexp = "keras_input")
  expect_error(keras_model(a, 3), class = "rkeras_type_error")
  expect_error(keras_model(a, y, foo = 1), class = "rkeras_value_error")
  expect_error(keras_input(), class = "rkeras_value_error", regexp = "shape")
})

test_that("rk_model_graph is cached and rebuilt after structure or trainable changes", {
  model <- mlp()
  g1 <- rk_model_graph(model)
  expect_s3_class(g1, "rkeras_engine_graph")
  expect_identical(rk_model_graph(model), g1)
  model$layers[[1]]$trainable <- FALSE
  g2 <- rk_model_graph(model)
  expect_false(identical(g2, g1))
  model |> layer_dense(3)
  g3 <- rk_model_graph(model)
  expect_false(identical(g3, g2))
  out <- rk_graph_forward(g3, list(rk_tensor(matrix(0, 2, 784), dtype = "float32")), FALSE, 0)
  expect_equal(dim(out[[1]]), c(2L, 3L))
  vars <- rk_model_variables(model)
  expect_equal(vapply(vars, function(v) v$path, ""),
               paste0(rep(vapply(model$layers, function(l) l$name, ""), each = 2), c("/kernel", "/bias")))
  expect_error(rk_model_graph(keras_model_sequential() |> layer_dense(2)), class = "rkeras_value_error",
               regexp = "not built")
})

test_that("rk_model_weight_penalties collects regularizers by weight index", {
  model <- keras_model_sequential(input_shape = 3) |>
    layer_dense(2, kernel_regularizer = regularizer_l2(0.5)) |>
    layer_dense(1, bias_regularizer = regularizer_l1(0.25))
  p <- rk_model_weight_penalties(model)
  expect_length(p$regularizers, 2)
  expect_equal(p$regularizers[[1]]$index, 0L)
  expect_equal(p$regularizers[[1]]$l2, 0.5)
  expect_equal(p$regularizers[[2]]$index, 3L)
  expect_equal(p$regularizers[[2]]$l1, 0.25)
  expect_length(p$constraints, 0)
  m2 <- keras_model_sequential(input_shape = 3) |>
    layer_dense(2, kernel_constraint = constraint_nonneg(), bias_constraint = function(w) w * 0)
  p2 <- rk_model_weight_penalties(m2)
  expect_length(p2$constraints, 1)
  expect_equal(p2$constraints[[1]][c("index", "kind")], list(index = 0L, kind = "non_neg"))
  expect_length(p2$r_constraints, 1)
  expect_equal(p2$r_constraints[[1]]$index, 1L)
  expect_true(is.function(p2$r_constraints[[1]]$fn))
})

test_that("rk_model_input_specs / output_specs", {
  model <- mlp()
  expect_equal(rk_model_input_specs(model)[[1]][c("shape", "dtype")],
               list(shape = c(NA_integer_, 784L), dtype = "float32"))
  expect_identical(rk_model_output_specs(model)[[1]]$shape, c(NA_integer_, 10L))
  expect_equal(rk_model_output_specs(model)[[1]]$name, model$layers[[2]]$name)
})

test_that("argument checks of the model functions", {
  expect_error(count_params(1), class = "rkeras_type_error")
  expect_error(get_layer(layer_dense(units = 1), "x"), class = "rkeras_type_error")
  expect_error(set_weights(mlp(), 1), class = "rkeras_type_error")
  expect_error(get_weights(mlp(), trainable = "yes"), class = "rkeras_type_error")
})
