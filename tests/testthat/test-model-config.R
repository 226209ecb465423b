# get_config() / from_config() / clone_model() on Keras-style configs.

test_that("layer configs have Keras's structure", {
  d <- layer_dense(units = 4, activation = "relu", name = "cfg_dense")
  cfg <- get_config(d)
  expect_equal(attr(cfg, "__class__"), "Dense")
  expect_equal(names(cfg)[1:5], c("name", "trainable", "dtype", "units", "activation"))
  expect_equal(cfg$name, "cfg_dense")
  expect_true(cfg$trainable)
  expect_equal(cfg$dtype, list(module = "keras", class_name = "DTypePolicy", config = list(name = "float32"),
                               registered_name = NULL))
  expect_equal(cfg$units, 4L)
  expect_equal(cfg$activation, "relu")
  # initializers serialise as Keras writes them
  expect_equal(cfg$kernel_initializer, list(module = "keras.initializers", class_name = "GlorotUniform",
                                            config = list(seed = NULL), registered_name = NULL))
  expect_equal(cfg$bias_initializer$class_name, "Zeros")
  expect_null(cfg$kernel_regularizer)
  expect_true("kernel_regularizer" %in% names(cfg))
  d3 <- layer_dense(units = 2, kernel_regularizer = regularizer_l2(0.5))
  expect_equal(get_config(d3)$kernel_regularizer$class_name, "L2")
  d2 <- from_config(cfg)
  expect_equal(d2$name, "cfg_dense")
  expect_equal(rk_state(d2)$config$units, 4L)
  expect_false(identical(d2, d))
})

test_that("Sequential config: name, layers with module/class_name/config, input layer first", {
  model <- keras_model_sequential(input_shape = 5, name = "seq_cfg") |>
    layer_dense(3, name = "h") |> layer_dense(1, name = "o")
  cfg <- get_config(model)
  expect_equal(attr(cfg, "__class__"), "Sequential")
  expect_equal(cfg$name, "seq_cfg")
  expect_length(cfg$layers, 3)
  expect_equal(vapply(cfg$layers, `[[`, "", "class_name"), c("InputLayer", "Dense", "Dense"))
  expect_equal(cfg$layers[[1]]$config$batch_shape, c(NA_integer_, 5L))
  expect_equal(cfg$layers[[2]]$module, "keras.layers")
  expect_equal(cfg$layers[[2]]$config$name, "h")
  expect_equal(cfg$layers[[2]]$build_config, list(input_shape = c(NA_integer_, 5L)))
  expect_equal(cfg$build_input_shape, c(NA_integer_, 5L))
  m2 <- from_config(cfg)
  expect_s3_class(m2, "keras.src.models.sequential.Sequential")
  expect_equal(vapply(m2$layers, function(l) l$name, ""), c("h", "o"))
  expect_equal(count_params(m2), count_params(model))
  expect_false(identical(m2$layers[[1]], model$layers[[1]]))
})

test_that("functional config has inbound_nodes, input_layers, output_layers and round-trips", {
  a <- keras_input(shape = 3, name = "in_a")
  b <- keras_input(shape = 2, name = "in_b")
  shared <- layer_dense(units = 2, name = "shared")
  h <- layer_concatenate(list(shared(a |> layer_dense(2, name = "pa")), shared(b |> layer_dense(2, name = "pb"))),
                         name = "cat")
  o <- h |> layer_dense(1, name = "out")
  model <- keras_model(list(a, b), o, name = "fcfg")
  cfg <- get_config(model)
  expect_equal(attr(cfg, "__class__"), "Functional")
  nm <- vapply(cfg$layers, `[[`, "", "name")
  expect_setequal(nm, c("in_a", "in_b", "pa", "pb", "shared", "cat", "out"))
  expect_equal(cfg$input_layers, list(list("in_a", 0L, 0L), list("in_b", 0L, 0L)))
  expect_equal(cfg$output_layers, list(list("out", 0L, 0L)))
  sh <- cfg$layers[[match("shared", nm)]]
  expect_length(sh$inbound_nodes, 2)
  expect_equal(sh$inbound_nodes[[1]]$args[[1]]$class_name, "__keras_tensor__")
  hist <- vapply(sh$inbound_nodes, function(n) n$args[[1]]$config$keras_history[[1]], "")
  expect_setequal(hist, c("pa", "pb"))
  cat_node <- cfg$layers[[match("cat", nm)]]$inbound_nodes[[1]]
  expect_length(cat_node$args[[1]], 2)  # merge layers get one list argument
  expect_equal(lapply(cat_node$args[[1]], function(t) t$config$keras_history),
               list(list("shared", 0L, 0L), list("shared", 1L, 0L)))
  m2 <- from_config(cfg)
  expect_s3_class(m2, "keras.src.models.functional.Functional")
  expect_equal(count_params(m2), count_params(model))
  expect_length(m2$weights, length(model$weights))
  set_weights(m2, get_weights(model))
  xa <- matrix(runif(6), 2)
  xb <- matrix(runif(4), 2)
  expect_equal(as.array(m2(list(xa, xb))), as.array(model(list(xa, xb))), tolerance = 1e-6)
})

test_that("clone_model gives the same structure with fresh weights", {
  set.seed(1)
  model <- keras_model_sequential(input_shape = 6, name = "orig") |> layer_dense(4) |> layer_dense(2)
  cl <- clone_model(model)
  expect_equal(vapply(cl$layers, function(l) l$name, ""), vapply(model$layers, function(l) l$name, ""))
  expect_equal(lapply(get_weights(cl), dim), lapply(get_weights(model), dim))
  expect_false(isTRUE(all.equal(get_weights(cl)[[1]], get_weights(model)[[1]])))
  set_weights(cl, get_weights(model))
  x <- matrix(runif(12), 2)
  expect_equal(as.array(cl(x)), as.array(model(x)), tolerance = 1e-6)
  # changing the clone leaves the original alone
  set_weights(cl, lapply(get_weights(cl), function(w) w * 0))
  expect_false(all(get_weights(model)[[1]] == 0))
  expect_error(clone_model(layer_dense(units = 1)), class = "rkeras_type_error")
})

test_that("an R function activation and r_fn layers survive from_config within R", {
  f <- function(x) x * 2
  model <- keras_model_sequential(input_shape = 2) |>
    layer_dense(2, activation = f, kernel_initializer = "ones")
  m2 <- from_config(get_config(model))
  set_weights(m2, get_weights(model))
  expect_equal(as.array(m2(matrix(1, 1, 2))), matrix(4, 1, 2), tolerance = 1e-6)
})

test_that("from_config without a class is a classed error", {
  expect_error(from_config(list(a = 1)), class = "rkeras_value_error")
  expect_error(get_config(42), class = "rkeras_type_error")
})
