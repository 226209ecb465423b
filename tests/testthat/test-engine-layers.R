# The engine-layer glue (src/rcpp_nn.cpp) from R: layers from Keras configs, shape inference,
# weight specs, eager calls, R functions as layers (autograd and errors through them), graphs,
# the batched predict path, and the conformance fixtures of groups 1, 2, 7 and 10 run directly
# on engine graphs.

f32 <- function(x) rk_tensor(x, dtype = "float32")

test_that("a Dense layer infers shapes and weight specs like Keras", {
  d <- rk_layer_new("Dense", "dense_1", list(units = 10L, activation = "relu", use_bias = TRUE))
  expect_s3_class(d, "rkeras_engine_layer")
  expect_identical(rk_layer_info(d), list(kind = "Dense", name = "dense_1", num_inputs = 1L))
  expect_identical(rk_layer_output_shapes(d, list(c(NA, 784L))), list(c(NA, 10L)))
  expect_identical(rk_layer_output_shapes(d, list(c(NA, 5, 784))), list(c(NA, 5L, 10L)))
  specs <- rk_layer_weight_specs(d, list(c(NA, 784L)))
  expect_identical(specs, list(
    list(name = "kernel", shape = c(784L, 10L), trainable = TRUE),
    list(name = "bias", shape = 10L, trainable = TRUE)
  ))
  expect_error(rk_layer_output_shapes(d, list(NA_integer_)),
               "Input 0 of layer \"dense_1\" is incompatible with the layer: expected min_ndim=2, found ndim=1. Full shape received: (None,)",
               fixed = TRUE, class = "rkeras_shape_error")
})

test_that("an eager Dense call matches R's matrix algebra", {
  x <- matrix(c(1, -2, 0.5, 3, 2, -1), 2, 3)
  k <- matrix(c(0.1, -0.3, 0.2, 0.5, 0.4, -0.6), 3, 2)
  b <- c(0.05, -0.1)
  d <- rk_layer_new("Dense", "d", list(units = 2L, activation = "tanh"))
  out <- rk_layer_call(d, list(rk_tensor(x)), list(rk_tensor(k), rk_tensor(b)), FALSE, NULL)
  expect_length(out, 1L)
  expect_s3_class(out[[1]], "rkeras_tensor")
  expect_equal(as.array(out[[1]]), tanh(x %*% k + rep(b, each = 2)), tolerance = 1e-12)
  # R arrays are accepted as inputs too (converted to float32)
  out32 <- rk_layer_call(d, list(x), list(f32(k), f32(b)), FALSE, NULL)
  expect_identical(rk_tensor_dtype(out32[[1]]), "float32")
  expect_equal(as.array(out32[[1]]), tanh(x %*% k + rep(b, each = 2)), tolerance = 1e-6)
  # The Keras message for a feature-count mismatch, before any work.
  expect_error(rk_layer_call(d, list(rk_tensor(matrix(0, 2, 4))), list(rk_tensor(k), rk_tensor(b)), FALSE, NULL),
               "Input 0 of layer \"d\" is incompatible with the layer: expected axis -1 of input shape to have value 3, but received input with shape (2, 4)",
               fixed = TRUE, class = "rkeras_shape_error")
})

test_that("bad kinds, settings and arguments give classed errors", {
  expect_error(rk_layer_new("Conv7D", "c", list()), "Unknown layer class \"Conv7D\"", class = "rkeras_value_error")
  expect_error(rk_layer_new("Dense", "d", list(units = 0L)), "expected a positive integer", class = "rkeras_value_error")
  expect_error(rk_layer_new("Dense", "d", list(units = 2L, activation = "relux")),
               "Could not interpret activation function identifier: \"relux\"", class = "rkeras_value_error")
  expect_error(rk_layer_new("Dense", "d", list(units = "two")), "setting `units` must be a number",
               class = "rkeras_value_error")
  expect_error(rk_layer_new("Dense", "d", list(units = list("a", "b"))), "attrs\\$units must be a number vector",
               class = "rkeras_type_error")
  expect_error(rk_layer_new("Dense", "d", list(2L)), "named list", class = "rkeras_type_error")
  d <- rk_layer_new("Dense", "d", list(units = 2L))
  expect_error(rk_layer_output_shapes(d, c(NA, 3L)), "input_shapes must be a list", class = "rkeras_type_error")
  expect_error(rk_layer_output_shapes(d, list(c(NA, 2.5))), "whole numbers", class = "rkeras_value_error")
  expect_error(rk_layer_output_shapes("d", list(c(NA, 3L))), "must be an rkeras_engine_layer",
               class = "rkeras_type_error")
})

test_that("settings convert from R: NULL is left out, NA is None, lists of numbers flatten", {
  # noise_shape = c(NA, 1, NA): one mask value per (batch, feature), shared along axis 2.
  dr <- rk_layer_new("Dropout", "dropout", list(rate = 0.5, noise_shape = c(NA, 1L, NA), seed = NULL))
  out <- as.array(rk_layer_call(dr, list(f32(array(1, c(3, 4, 5)))), NULL, TRUE, 42)[[1]])
  for (j in 2:4) expect_identical(out[, j, ], out[, 1, ])
  expect_true(all(out %in% c(0, 2)))
  # seeded calls repeat; inference is the identity
  again <- as.array(rk_layer_call(dr, list(f32(array(1, c(3, 4, 5)))), NULL, TRUE, 42)[[1]])
  expect_identical(again, out)
  expect_identical(as.array(rk_layer_call(dr, list(f32(array(1, c(3, 4, 5)))), NULL, FALSE, NULL)[[1]]),
                   array(1, c(3, 4, 5)))
  # Dot with axes = list(1, 2) (Keras numbering, batch axis 0)
  dot <- rk_layer_new("Dot", "dot", list(axes = list(1L, 2L), normalize = FALSE))
  expect_identical(rk_layer_output_shapes(dot, list(c(NA, 3L, 2L), c(NA, 4L, 3L))), list(c(NA, 2L, 4L)))
  # ReLU with max_value = NULL (None) is a plain relu
  relu <- rk_layer_new("ReLU", "relu", list(max_value = NULL, negative_slope = 0, threshold = 0))
  expect_equal(as.array(rk_layer_call(relu, list(rk_tensor(c(-1, 2, 9))), NULL, FALSE, NULL)[[1]]),
               array(c(0, 2, 9)))
})

test_that("ActivityRegularization returns its loss as an attribute", {
  ar <- rk_layer_new("ActivityRegularization", "ar", list(l1 = 0.1, l2 = 0.01))
  x <- matrix(c(1, -2, 3, -4), 2)
  out <- rk_layer_call(ar, list(rk_tensor(x)), NULL, TRUE, NULL)
  expect_equal(as.array(out[[1]]), x)
  losses <- attr(out, "losses")
  expect_length(losses, 1L)
  expect_equal(as.numeric(losses[[1]]), 0.1 * 10 + 0.01 * 30)  # Keras 3: no division by the batch size
})

test_that("an R function as an external layer: values, training flag, autograd, errors", {
  seen <- NULL
  fn <- function(inputs, training) {
    seen <<- training
    list(inputs[[1]] * inputs[[2]] + 1)
  }
  ext <- rk_layer_external("lambda", fn, list(c(NA, 3L)), 2L)
  expect_identical(rk_layer_info(ext)$num_inputs, 2L)
  expect_identical(rk_layer_output_shapes(ext, list(c(NA, 3L), c(NA, 3L))), list(c(NA, 3L)))
  a <- matrix(1:6, 2) + 0
  b <- matrix(c(2, 0, -1, 1, 3, 0.5), 2)
  out <- rk_layer_call(ext, list(rk_tensor(a), rk_tensor(b)), NULL, TRUE, NULL)
  expect_true(seen)
  expect_equal(as.array(out[[1]]), a * b + 1)

  # Gradients flow through the R ops into an engine weight, inside a graph.
  scale <- rk_layer_external("scale", function(inputs, training) inputs[[1]] * 3, NULL, 1L)
  dense <- rk_layer_new("Dense", "dense", list(units = 2L, use_bias = FALSE))
  k <- rk_tensor(matrix(c(0.5, -1, 2, 0.25, 1, -0.5), 3, 2), requires_grad = TRUE)
  g <- rk_graph_new(list(list(layer = scale, inputs = 0L, weights = integer(), outputs = 1L),
                         list(layer = dense, inputs = 1L, weights = 0L, outputs = 2L)),
                    list(k), TRUE, 0L, 2L, 3L)
  x <- matrix(c(1, 2, -1, 0.5, 3, 1), 2, 3)
  y <- rk_graph_forward(g, list(rk_tensor(x)), FALSE, NULL)[[1]]
  expect_equal(as.array(y), (3 * x) %*% as.array(k))
  rk_backward(sum(y))
  expect_equal(as.array(rk_grad(k)), t(3 * x) %*% matrix(1, 2, 2))
  # ... and not when grad is off (predict path): the result is the same without a tape.
  expect_equal(rk_graph_predict(g, list(rk_tensor(x)), 1L)[[1]], (3 * x) %*% as.array(k))

  # Plain R arrays are accepted as results.
  arr <- rk_layer_external("arr", function(inputs, training) as.array(inputs[[1]]) * 2, NULL, 1L)
  expect_equal(as.array(rk_layer_call(arr, list(rk_tensor(a)), NULL, FALSE, NULL)[[1]]), 2 * a)
  # R errors propagate unchanged (the engine unwinds cleanly); bad results are classed errors.
  boom <- rk_layer_external("boom", function(inputs, training) stop("boom from R"), NULL, 1L)
  expect_error(rk_layer_call(boom, list(rk_tensor(a)), NULL, FALSE, NULL), "boom from R")
  gb <- rk_graph_new(list(list(layer = boom, inputs = 0L, weights = integer(), outputs = 1L)),
                     list(), logical(), 0L, 1L, 2L)
  expect_error(rk_graph_predict(gb, list(rk_tensor(a)), 1L), "boom from R")
  expect_true(rk_grad_enabled())  # predict's no-grad mode was restored after the error
  bad <- rk_layer_external("bad", function(inputs, training) "nope", NULL, 1L)
  expect_error(rk_layer_call(bad, list(rk_tensor(a)), NULL, FALSE, NULL),
               "the function of layer \"bad\" must return a tensor", class = "rkeras_type_error")
  wrong <- rk_layer_external("wrong", function(inputs, training) inputs[[1]], list(c(NA, 5L)), 1L)
  expect_error(rk_layer_call(wrong, list(rk_tensor(a)), NULL, FALSE, NULL),
               "output 0 has shape (2, 3), but its output shape was declared as (None, 5)", fixed = TRUE,
               class = "rkeras_shape_error")
})

# Two inputs through one shared Dense, concatenated, then reshaped to (N, 2, 3): a shared layer,
# a merge and a rank-3 output for the predict path.
shared_graph <- function() {
  shared <- rk_layer_new("Dense", "shared", list(units = 3L, activation = "relu"))
  cat <- rk_layer_new("Concatenate", "concat", list(axis = -1L))
  rs <- rk_layer_new("Reshape", "reshape", list(target_shape = c(2L, 3L)))
  k <- f32(matrix(seq(-1, 1, length.out = 12), 4, 3))
  b <- f32(c(0.1, 0, -0.1))
  g <- rk_graph_new(
    list(list(layer = shared, inputs = 0L, weights = 0:1, outputs = 2L),
         list(layer = shared, inputs = 1L, weights = 0:1, outputs = 3L),
         list(layer = cat, inputs = 2:3, weights = integer(), outputs = 4L),
         list(layer = rs, inputs = 4L, weights = integer(), outputs = 5L)),
    list(k, b), c(TRUE, TRUE), 0:1, c(5L, 4L), 6L)
  list(graph = g, k = as.array(k), b = as.array(b))
}

test_that("a graph with a shared layer and a merge runs, and predict batches it exactly", {
  m <- shared_graph()
  expect_s3_class(m$graph, "rkeras_engine_graph")
  set.seed(1)
  x1 <- matrix(rnorm(40), 10, 4)
  x2 <- matrix(rnorm(40), 10, 4)
  h <- function(x) pmax(x %*% m$k + rep(m$b, each = nrow(x)), 0)
  cat_ref <- cbind(h(x1), h(x2))
  # Reshape is row-major: row i of cat_ref (6 values) becomes a 2 x 3 block filled by rows.
  rs_ref <- aperm(array(t(cat_ref), c(3, 2, 10)), c(3, 2, 1))
  out <- rk_graph_forward(m$graph, list(f32(x1), f32(x2)), FALSE, NULL)
  expect_length(out, 2L)
  expect_equal(as.array(out[[1]]), rs_ref, tolerance = 1e-6)
  expect_equal(as.array(out[[2]]), cat_ref, tolerance = 1e-6)
  for (bs in c(1L, 3L, 10L, 64L)) {
    p <- rk_graph_predict(m$graph, list(f32(x1), f32(x2)), bs)
    expect_identical(p[[1]], as.array(out[[1]]))
    expect_identical(p[[2]], as.array(out[[2]]))
    expect_identical(dim(p[[1]]), c(10L, 2L, 3L))
  }
  # R arrays are converted once (float32)
  expect_identical(rk_graph_predict(m$graph, list(x1, x2), 4L)[[2]], as.array(out[[2]]))
})

test_that("graph construction and predict validate their arguments", {
  m <- shared_graph()
  x <- f32(matrix(0, 5, 4))
  expect_error(rk_graph_predict(m$graph, list(x), 2L), "the model expects 2 input(s), but received 1",
               fixed = TRUE, class = "rkeras_value_error")
  expect_error(rk_graph_predict(m$graph, list(x, f32(matrix(0, 4, 4))), 2L),
               "same number of rows", class = "rkeras_value_error")
  expect_error(rk_graph_predict(m$graph, list(x, x), 0L), "batch_size must be a positive integer",
               class = "rkeras_value_error")
  expect_error(rk_graph_predict(m$graph, list(f32(matrix(0, 5, 3)), x), 2L),
               "Input 0 of layer \"shared\" is incompatible with the layer: expected axis -1 of input shape to have value 4",
               class = "rkeras_shape_error")
  d <- rk_layer_new("Dense", "d", list(units = 2L))
  w <- list(f32(matrix(0, 3, 2)), f32(c(0, 0)))
  expect_error(rk_graph_new(list(list(layer = d, inputs = 0L, weights = 0:1, outputs = 5L)), w, c(TRUE, TRUE),
                            0L, 5L, 2L),
               "invalid model graph: node 0 (layer \"d\") refers to value 5, outside [0, 2)", fixed = TRUE,
               class = "rkeras_value_error")
  expect_error(rk_graph_new(list(list(layer = d, inputs = 0L, weights = 0:1)), w, c(TRUE, TRUE), 0L, 1L, 2L),
               "has no element `outputs`", class = "rkeras_value_error")
  expect_error(rk_graph_forward("g", list(x), FALSE, NULL), "must be an rkeras_engine_graph",
               class = "rkeras_type_error")
})

# ------------------------------------------------------------------ conformance fixtures

# Builds an engine graph from a case's layer list (Sequential: chained; functional: inbound_nodes),
# taking each layer's weights from the case by name, and runs predict().
run_case_on_engine <- function(id, batch_size = 2L) {
  case <- conformance_case(id)
  inputs <- lapply(case$inputs, fixture_array)
  in_names <- unlist(case$model$input_names)
  ids <- stats::setNames(seq_along(in_names) - 1L, in_names)
  shapes <- stats::setNames(lapply(inputs, function(a) c(NA, dim(a)[-1])), in_names)
  w_all <- fixture_weights(case)
  nodes <- list()
  weights <- list()
  prev <- in_names[1]
  next_id <- length(in_names)
  for (l in case$layers) {
    if (identical(l$class_name, "InputLayer")) next
    cfg <- l$config[setdiff(names(l$config), c("name", "trainable", "dtype", "batch_input_shape"))]
    layer <- rk_layer_new(l$class_name, l$name, cfg)
    src <- if (length(l$inbound_nodes)) vapply(l$inbound_nodes[[1]], function(n) n[[1]], "") else prev
    in_shapes <- unname(shapes[src])
    specs <- rk_layer_weight_specs(layer, in_shapes)
    w_idx <- integer()
    for (s in specs) {
      w <- w_all[[paste0(l$name, "/", s$name)]]
      expect_identical(as.integer(dim(as.array(w))), s$shape)
      weights[[length(weights) + 1L]] <- f32(w)
      w_idx <- c(w_idx, length(weights) - 1L)
    }
    out_shape <- rk_layer_output_shapes(layer, in_shapes)[[1]]
    expect_identical(out_shape, vapply(l$output_shape, function(v) if (is.null(v)) NA_integer_ else as.integer(v), 1L))
    nodes[[length(nodes) + 1L]] <- list(layer = layer, inputs = unname(ids[src]), weights = w_idx, outputs = next_id)
    ids[l$name] <- next_id
    shapes[[l$name]] <- out_shape
    next_id <- next_id + 1L
    prev <- l$name
  }
  out_names <- vapply(case$outputs, function(o) o$name, "")
  g <- rk_graph_new(nodes, weights, rep(TRUE, length(weights)), unname(ids[in_names]), unname(ids[out_names]),
                    next_id)
  pred <- rk_graph_predict(g, lapply(inputs, f32), batch_size)
  for (i in seq_along(pred)) expect_fixture_equal(pred[[i]], fixture_array(case$outputs[[i]]), case$tolerance)
  invisible(pred)
}

test_that("conformance fixtures of groups 1, 2, 7 and 10 match on engine graphs", {
  dir <- conformance_dir()
  skip_if(is.null(dir), "conformance fixtures not available")
  cases <- c("01_dense_stack",
             grep("^02_", list.dirs(dir, full.names = FALSE, recursive = FALSE), value = TRUE),
             "07_dense_dropout_dense", "07_dropout", "07_flatten", "07_repeatvector", "07_reshape",
             grep("^10_", list.dirs(dir, full.names = FALSE, recursive = FALSE), value = TRUE))
  cases <- unique(cases)
  expect_gte(length(cases), 25L)
  for (id in cases) {
    # tfjs's hard_sigmoid is Keras 2's (0.2x + 0.5); Keras 3 (our semantics) differs by design.
    if (grepl("hard_sigmoid", id)) next
    run_case_on_engine(id)
  }
})
