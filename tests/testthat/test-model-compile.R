# compile(): keras3 signature and return, what it records, identifier errors before any
# change, multi-output losses / metrics / loss_weights.

cm_model <- function(units = 2, activation = NULL) {
  keras_model_sequential(input_shape = 3) |> layer_dense(units, activation = activation)
}

test_that("compile has keras3's signature, returns the model invisibly and records the optimizer", {
  expect_equal(names(formals(rkeras:::compile.keras.src.models.model.Model)),
               c("object", "optimizer", "loss", "metrics", "...", "loss_weights", "weighted_metrics",
                 "run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss"))
  expect_equal(formals(rkeras:::compile.keras.src.models.model.Model)$optimizer, "rmsprop")
  m <- cm_model()
  expect_invisible(out <- compile(m, loss = "mse"))
  expect_identical(out, m)
  expect_s3_class(m$optimizer, "keras.src.optimizers.rmsprop.RMSprop")
  opt <- optimizer_adam(0.02)
  m |> compile(optimizer = opt, loss = loss_huber(), metrics = c("mae"))
  expect_identical(m$optimizer, opt)
  expect_true(m$compiled)
})

test_that("unknown identifiers are classed errors and leave the model as it was", {
  m <- cm_model()
  m |> compile(optimizer = "sgd", loss = "mse")
  before <- m$optimizer
  expect_error(compile(m, optimizer = "adamax2", loss = "mse"), class = "rkeras_value_error",
               regexp = "optimizer identifier: \"adamax2\"")
  expect_error(compile(m, loss = "mean_sqared_error"), class = "rkeras_value_error",
               regexp = "loss identifier: \"mean_sqared_error\"")
  expect_error(compile(m, loss = "mse", metrics = "acuracy"), class = "rkeras_value_error",
               regexp = "metric identifier: \"acuracy\"")
  expect_error(compile(m, loss = "mse", foo = 1), class = "rkeras_value_error", regexp = "foo")
  expect_error(compile(m, loss = "mse", loss_weights = "a"), class = "rkeras_type_error")
  expect_identical(m$optimizer, before)
})

test_that("fit/evaluate before compile are classed errors", {
  m <- cm_model()
  x <- matrix(1, 4, 3)
  y <- matrix(0, 4, 2)
  expect_error(fit(m, x, y), class = "rkeras_value_error", regexp = "must call `compile\\(\\)` before calling `fit\\(\\)`")
  expect_error(evaluate(m, x, y), class = "rkeras_value_error", regexp = "before calling `evaluate\\(\\)`")
  expect_error(train_on_batch(m, x, y), class = "rkeras_value_error")
  m |> compile(optimizer = "sgd")
  expect_error(fit(m, x, y, verbose = 0), class = "rkeras_value_error", regexp = "No loss to compute")
  # predict needs no compile
  expect_equal(dim(predict(m, x, verbose = 0)), c(4L, 2L))
})

test_that("multi-output models take per-output losses, loss_weights and metrics by name", {
  set.seed(2)
  inp <- keras_input(shape = 3, name = "inp")
  a <- inp |> layer_dense(1, name = "reg")
  b <- inp |> layer_dense(2, activation = "softmax", name = "cls")
  m <- keras_model(inp, list(a, b))
  x <- matrix(rnorm(40 * 3), ncol = 3)
  ya <- cbind(rowSums(x))
  yb <- as.integer(x[, 1] > 0)
  m |> compile(optimizer = "sgd", loss = list(reg = "mse", cls = "sparse_categorical_crossentropy"),
               loss_weights = list(reg = 0.5, cls = 2), metrics = list(cls = "accuracy", reg = "mae"))
  ev <- evaluate(m, x, list(ya, yb), verbose = 0)
  expect_setequal(names(ev), c("loss", "reg_loss", "cls_loss", "reg_mae", "cls_accuracy"))
  expect_equal(names(ev), sort(names(ev), method = "radix"))
  p <- predict(m, x, verbose = 0)
  expect_type(p, "list")
  expect_length(p, 2L)
  mse <- mean((p[[1]] - ya)^2)
  sce <- mean(-log(p[[2]][cbind(seq_len(40), yb + 1L)]))
  expect_equal(ev$reg_loss, mse, tolerance = 1e-5)
  expect_equal(ev$cls_loss, sce, tolerance = 1e-5)
  expect_equal(ev$loss, 0.5 * mse + 2 * sce, tolerance = 1e-5)
  expect_equal(ev$reg_mae, mean(abs(p[[1]] - ya)), tolerance = 1e-5)
  # named y list is matched by output name
  ev2 <- evaluate(m, x, list(cls = yb, reg = ya), verbose = 0)
  expect_equal(ev2, ev)

  expect_error(compile(m, loss = list(regx = "mse", cls = "mse")), class = "rkeras_value_error",
               regexp = "\"regx\".*not among the model's outputs")
  expect_error(compile(m, loss = "mse", metrics = c("mae", "mse", "acc")), class = "rkeras_value_error",
               regexp = "as many entries as the model has outputs")
})
