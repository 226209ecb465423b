# Metrics with keras3's dual behaviour: metric_x() without data returns a
# stateful metric object (callable, with update_state(), result(),
# reset_state()); metric_x(y_true, y_pred) returns per-sample values. In fit()
# the metrics run inside the engine trainer; rk_resolve_metric() turns
# compile()'s identifiers into the engine's metric descriptions, resolving
# "accuracy" from the loss and the shapes as Keras 3 does.

rk_metric_defs <- list(
  binary_accuracy = list(class = "keras.src.metrics.accuracy_metrics.BinaryAccuracy", direction = "up"),
  categorical_accuracy = list(class = "keras.src.metrics.accuracy_metrics.CategoricalAccuracy", direction = "up"),
  sparse_categorical_accuracy = list(class = "keras.src.metrics.accuracy_metrics.SparseCategoricalAccuracy",
                                     direction = "up"),
  mean_absolute_error = list(class = "keras.src.metrics.regression_metrics.MeanAbsoluteError", direction = "down"),
  mean_squared_error = list(class = "keras.src.metrics.regression_metrics.MeanSquaredError", direction = "down"),
  binary_crossentropy = list(class = "keras.src.metrics.probabilistic_metrics.BinaryCrossentropy",
                             direction = "down"),
  categorical_crossentropy = list(class = "keras.src.metrics.probabilistic_metrics.CategoricalCrossentropy",
                                  direction = "down"),
  sparse_categorical_crossentropy = list(
    class = "keras.src.metrics.probabilistic_metrics.SparseCategoricalCrossentropy", direction = "down")
)

# String identifiers and the kind they mean ("accuracy"/"acc" and
# "crossentropy"/"ce" depend on the data; see rk_resolve_metric()).
rk_metric_aliases <- c(
  mae = "mean_absolute_error", MAE = "mean_absolute_error", mean_absolute_error = "mean_absolute_error",
  MeanAbsoluteError = "mean_absolute_error",
  mse = "mean_squared_error", MSE = "mean_squared_error", mean_squared_error = "mean_squared_error",
  MeanSquaredError = "mean_squared_error",
  binary_accuracy = "binary_accuracy", BinaryAccuracy = "binary_accuracy",
  categorical_accuracy = "categorical_accuracy", CategoricalAccuracy = "categorical_accuracy",
  sparse_categorical_accuracy = "sparse_categorical_accuracy",
  SparseCategoricalAccuracy = "sparse_categorical_accuracy",
  binary_crossentropy = "binary_crossentropy", BinaryCrossentropy = "binary_crossentropy",
  categorical_crossentropy = "categorical_crossentropy", CategoricalCrossentropy = "categorical_crossentropy",
  sparse_categorical_crossentropy = "sparse_categorical_crossentropy",
  SparseCategoricalCrossentropy = "sparse_categorical_crossentropy"
)

# Per-sample values (an rkeras_tensor) of metric `kind`.
rk_metric_values <- function(kind, attrs, y_true, y_pred) {
  switch(kind,
    binary_accuracy = {
      yp <- rk_as_float_tensor(y_pred, "y_pred")
      yt <- rk_as_float_tensor(y_true, "y_true")
      yy <- rk_align_ranks(yt, yp)
      hit <- rk_cast(rk_equal(yy[[1L]], rk_cast(yy[[2L]] > rk_null_or(attrs$threshold, 0.5), "float32")), "float32")
      rk_mean(hit, axis = -1)
    },
    categorical_accuracy = {
      yp <- rk_as_float_tensor(y_pred, "y_pred")
      yt <- rk_as_float_tensor(y_true, "y_true")
      rk_cast(rk_equal(rk_argmax(yt, axis = -1), rk_argmax(yp, axis = -1)), "float32")
    },
    sparse_categorical_accuracy = {
      yp <- rk_as_float_tensor(y_pred, "y_pred")
      yt <- rk_as_float_tensor(y_true, "y_true")
      if (length(dim(yt)) == length(dim(yp)) && utils::tail(dim(yt), 1L) == 1L) yt <- rk_squeeze(yt, -1)
      pred <- rk_cast(rk_argmax(yp, axis = -1, zero_indexed = TRUE), "float32")
      rk_cast(rk_equal(yt, pred), "float32")
    },
    rk_loss_values(kind, attrs, y_true, y_pred)
  )
}

# ---- metric objects --------------------------------------------------------------------

rk_new_metric <- function(kind, attrs, name, dtype) {
  if (!is.character(name) || length(name) != 1L || is.na(name))
    rkeras_abort("`name` must be a single string.", class = "rkeras_type_error", call = NULL)
  state <- new.env(parent = emptyenv())
  state$spec <- list(kind = kind, attrs = attrs, name = name, dtype = dtype)
  state$total <- 0
  state$count <- 0
  state$update_state <- function(y_true, y_pred, sample_weight = NULL) {
    v <- as.numeric(as.array(rk_metric_values(kind, attrs, y_true, y_pred)))
    w <- if (is.null(sample_weight)) rep(1, length(v)) else rep_len(as.numeric(sample_weight), length(v))
    state$total <- state$total + sum(v * w)
    state$count <- state$count + sum(w)
    invisible(NULL)
  }
  state$result <- function() if (state$count > 0) state$total / state$count else 0
  state$reset_state <- function() {
    state$total <- 0
    state$count <- 0
    invisible(NULL)
  }
  fn <- function(y_true, y_pred, sample_weight = NULL) {
    state$update_state(y_true, y_pred, sample_weight)
    state$result()
  }
  environment(fn) <- list2env(list(state = state), parent = asNamespace("rkeras"))
  class(fn) <- c(rk_metric_defs[[kind]]$class, "keras.src.metrics.reduction_metrics.MeanMetricWrapper",
                 "keras.src.metrics.reduction_metrics.Mean", "keras.src.metrics.metric.Metric",
                 "rkeras_metric", "function")
  fn
}

rk_metric_state <- function(x) get("state", envir = environment(x))

#' @export
`$.rkeras_metric` <- function(x, name) {
  state <- rk_metric_state(x)
  switch(name,
    name = state$spec$name,
    dtype = rk_null_or(state$spec$dtype, "float32"),
    get_config = function() c(list(name = state$spec$name, dtype = rk_null_or(state$spec$dtype, "float32")),
                              state$spec$attrs),
    update_state = state$update_state,
    result = state$result,
    reset_state = state$reset_state,
    state$spec$attrs[[name]]
  )
}

#' @export
print.rkeras_metric <- function(x, ...) {
  cat(sprintf("<%s name='%s'>\n", sub(".*\\.", "", class(x)[1L]), x$name))
  invisible(x)
}

rk_metric_dispatch <- function(kind, attrs, y_true, y_pred, name, dtype, missing_data) {
  if (missing_data) return(rk_new_metric(kind, attrs, name, dtype))
  if (is.null(y_true) || is.null(y_pred))
    rkeras_abort("Both `y_true` and `y_pred` are needed to compute a metric.", class = "rkeras_value_error",
                 call = NULL)
  as.array(rk_metric_values(kind, attrs, y_true, y_pred))
}

#' Metrics
#'
#' Metrics as in keras3. Called without `y_true` and `y_pred`, each returns a
#' stateful metric object for `compile(metrics = )`; the object is callable
#' (`m(y_true, y_pred)` updates its state and returns the running result) and
#' has `m$update_state()`, `m$result()` and `m$reset_state()`. Called with data,
#' it returns the per-sample values.
#'
#' In `compile()`, the strings `"accuracy"` and `"acc"` are resolved as Keras 3
#' resolves them from the shapes of the labels and predictions: binary
#' accuracy when the model output has one unit, sparse categorical accuracy when
#' the labels have one axis fewer than the output (or a last axis of 1 where the
#' output has several units), else categorical accuracy. The strings `"mae"`,
#' `"mse"`, `"binary_accuracy"`, `"categorical_accuracy"`,
#' `"sparse_categorical_accuracy"` and the names of these functions are known
#' too; the logged name is the string as given.
#'
#' Formulas: binary accuracy `mean(y_true == (y_pred > threshold))` over the
#' last axis; categorical accuracy `argmax(y_true) == argmax(y_pred)`; sparse
#' categorical accuracy `y_true == argmax(y_pred)` (0-based labels); mean
#' absolute / squared error over the last axis.
#'
#' @param y_true Labels (R array or tensor). Omit to get a metric object.
#' @param y_pred Predictions.
#' @param threshold Probability above which a prediction counts as 1.
#' @param ... Not used.
#' @param name Name of the metric (the key in the logs and history).
#' @param dtype Accepted for compatibility.
#' @return A metric object, or a numeric array of per-sample values.
#' @examples
#' metric_binary_accuracy(c(1, 0, 1), c(0.8, 0.6, 0.4))
#' m <- metric_sparse_categorical_accuracy()
#' m(c(0, 1), rbind(c(0.9, 0.1), c(0.8, 0.2)))
#' m$result()
#' m$reset_state()
#' @name metrics
NULL

#' @rdname metrics
#' @export
metric_binary_accuracy <- function(y_true, y_pred, threshold = 0.5, ..., name = "binary_accuracy", dtype = NULL) {
  rk_check_no_dots(list(...), "metric_binary_accuracy")
  attrs <- list(threshold = rk_check_number(threshold, "threshold"))
  rk_metric_dispatch("binary_accuracy", attrs, if (!missing(y_true)) y_true, if (!missing(y_pred)) y_pred,
                     name, dtype, missing(y_true) && missing(y_pred))
}

#' @rdname metrics
#' @export
metric_categorical_accuracy <- function(y_true, y_pred, ..., name = "categorical_accuracy", dtype = NULL) {
  rk_check_no_dots(list(...), "metric_categorical_accuracy")
  rk_metric_dispatch("categorical_accuracy", list(), if (!missing(y_true)) y_true, if (!missing(y_pred)) y_pred,
                     name, dtype, missing(y_true) && missing(y_pred))
}

#' @rdname metrics
#' @export
metric_sparse_categorical_accuracy <- function(y_true, y_pred, ..., name = "sparse_categorical_accuracy",
                                               dtype = NULL) {
  rk_check_no_dots(list(...), "metric_sparse_categorical_accuracy")
  rk_metric_dispatch("sparse_categorical_accuracy", list(), if (!missing(y_true)) y_true,
                     if (!missing(y_pred)) y_pred, name, dtype, missing(y_true) && missing(y_pred))
}

#' @rdname metrics
#' @export
metric_mean_absolute_error <- function(y_true, y_pred, ..., name = "mean_absolute_error", dtype = NULL) {
  rk_check_no_dots(list(...), "metric_mean_absolute_error")
  rk_metric_dispatch("mean_absolute_error", list(), if (!missing(y_true)) y_true, if (!missing(y_pred)) y_pred,
                     name, dtype, missing(y_true) && missing(y_pred))
}

#' @rdname metrics
#' @export
metric_mean_squared_error <- function(y_true, y_pred, ..., name = "mean_squared_error", dtype = NULL) {
  rk_check_no_dots(list(...), "metric_mean_squared_error")
  rk_metric_dispatch("mean_squared_error", list(), if (!missing(y_true)) y_true, if (!missing(y_pred)) y_pred,
                     name, dtype, missing(y_true) && missing(y_pred))
}

rk_metric_functions <- function() {
  list(binary_accuracy = metric_binary_accuracy, categorical_accuracy = metric_categorical_accuracy,
       sparse_categorical_accuracy = metric_sparse_categorical_accuracy,
       mean_absolute_error = metric_mean_absolute_error, mean_squared_error = metric_mean_squared_error)
}

# Checks one compile() metric identifier without resolving data-dependent ones.
rk_check_metric_identifier <- function(x) {
  if (inherits(x, "rkeras_metric")) return(invisible(x))
  if (is.character(x) && length(x) == 1L && !is.na(x)) {
    if (tolower(x) %in% c("accuracy", "acc", "crossentropy", "ce") || !is.na(rk_metric_aliases[x]))
      return(invisible(x))
    rkeras_abort(sprintf("Could not interpret metric identifier: \"%s\". Known metrics: %s.", x,
                         paste0("\"", c("accuracy", "mae", "mse", names(rk_metric_defs)), "\"", collapse = ", ")),
                 class = "rkeras_value_error", call = NULL)
  }
  if (is.function(x)) {
    fns <- c(rk_metric_functions(), rk_loss_functions())
    for (k in names(fns)) if (identical(x, fns[[k]])) return(invisible(x))
    rkeras_abort("Custom R metric functions are not supported yet; use a metric_*() object or a string.",
                 class = "rkeras_unsupported_error", call = NULL)
  }
  rkeras_abort(sprintf("A metric must be a string such as \"accuracy\" or a metric object, got %s.",
                       rk_describe(x)), class = "rkeras_type_error", call = NULL)
}

# Resolves one metric identifier for an output into list(kind, name, attrs,
# direction). `y_rank`/`y_last`: rank and last extent of the labels as given;
# `out_rank`/`out_last`: of the model output (batch axis included).
rk_resolve_metric <- function(x, loss_kind, y_rank, y_last, out_rank, out_last) {
  mk <- function(kind, name, attrs = list())
    list(kind = kind, name = name, attrs = attrs, direction = rk_metric_defs[[kind]]$direction)
  if (inherits(x, "rkeras_metric")) {
    st <- rk_metric_state(x)
    return(mk(st$spec$kind, st$spec$name, st$spec$attrs))
  }
  if (is.function(x)) {
    fns <- c(rk_metric_functions(), rk_loss_functions())
    for (k in names(fns)) if (identical(x, fns[[k]])) return(mk(k, k))
  }
  # Keras 3's is_binary_or_sparse_categorical().
  is_binary <- identical(as.integer(out_last), 1L)
  is_sparse <- y_rank < out_rank || (identical(as.integer(y_last), 1L) && !is_binary)
  lx <- tolower(x)
  if (lx %in% c("accuracy", "acc")) {
    kind <- if (is_binary) "binary_accuracy" else if (is_sparse) "sparse_categorical_accuracy"
            else "categorical_accuracy"
    return(mk(kind, x))
  }
  if (lx %in% c("crossentropy", "ce")) {
    kind <- if (is_binary) "binary_crossentropy" else if (is_sparse) "sparse_categorical_crossentropy"
            else "categorical_crossentropy"
    return(mk(kind, x))
  }
  kind <- rk_metric_aliases[[x]]
  mk(kind, x)
}
