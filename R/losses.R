# Losses with keras3's dual behaviour: loss_x() without data returns a loss
# object (a callable of class c(<keras class>, "keras.src.losses.loss.Loss",
# "rkeras_loss", "function")); loss_x(y_true, y_pred) returns the per-sample
# values. The values are computed by engine ops with Keras 3's formulas; in
# fit() the same losses run inside the engine trainer (rk_loss_spec() gives
# the description it receives).

rk_loss_defs <- list(
  mean_squared_error = list(class = "keras.src.losses.losses.MeanSquaredError", name = "mean_squared_error"),
  mean_absolute_error = list(class = "keras.src.losses.losses.MeanAbsoluteError", name = "mean_absolute_error"),
  binary_crossentropy = list(class = "keras.src.losses.losses.BinaryCrossentropy", name = "binary_crossentropy"),
  categorical_crossentropy = list(class = "keras.src.losses.losses.CategoricalCrossentropy",
                                  name = "categorical_crossentropy"),
  sparse_categorical_crossentropy = list(class = "keras.src.losses.losses.SparseCategoricalCrossentropy",
                                         name = "sparse_categorical_crossentropy"),
  huber = list(class = "keras.src.losses.losses.Huber", name = "huber_loss")
)

# Identifiers compile(loss = ) accepts, as Keras's losses.get() does (function
# names, class names and the short aliases).
rk_loss_aliases <- c(
  mse = "mean_squared_error", MSE = "mean_squared_error", mean_squared_error = "mean_squared_error",
  MeanSquaredError = "mean_squared_error",
  mae = "mean_absolute_error", MAE = "mean_absolute_error", mean_absolute_error = "mean_absolute_error",
  MeanAbsoluteError = "mean_absolute_error",
  binary_crossentropy = "binary_crossentropy", BinaryCrossentropy = "binary_crossentropy",
  categorical_crossentropy = "categorical_crossentropy", CategoricalCrossentropy = "categorical_crossentropy",
  sparse_categorical_crossentropy = "sparse_categorical_crossentropy",
  SparseCategoricalCrossentropy = "sparse_categorical_crossentropy",
  huber = "huber", Huber = "huber", huber_loss = "huber"
)

# ---- tensors from direct-call arguments ------------------------------------------------

# A float32 engine tensor from R data or a tensor (Keras converts direct-call
# arguments to floatx). Vectors keep rank 1 even with one element.
rk_as_float_tensor <- function(x, arg) {
  if (is_rk_tensor(x)) return(if (rk_tensor_dtype(x) == "float32") x else rk_cast(x, "float32"))
  if (is.factor(x)) x <- as.integer(x) - 1L
  if (is.data.frame(x)) x <- rk_df_to_matrix(x, arg)
  if (!is.numeric(x) && !is.logical(x))
    rkeras_abort(sprintf("`%s` must be a numeric array or an rkeras_tensor, got %s.", arg, rk_describe(x)),
                 class = "rkeras_type_error", call = NULL)
  if (anyNA(x))
    rkeras_abort(sprintf("`%s` contains NA values.", arg), class = "rkeras_value_error", call = NULL)
  if (is.null(dim(x))) dim(x) <- length(x)
  rk_tensor_from_r(x, "float32")
}

# Sparse labels (0-based class ids) as an int32 tensor.
rk_as_label_tensor <- function(x, arg) {
  if (is_rk_tensor(x)) return(if (rk_tensor_dtype(x) == "int32") x else rk_cast(x, "int32"))
  if (is.factor(x)) x <- as.integer(x) - 1L
  if (!is.numeric(x) || anyNA(x) || any(x != trunc(x)))
    rkeras_abort(sprintf("`%s` must hold whole-number class labels (0-based), got %s.", arg, rk_describe(x)),
                 class = "rkeras_value_error", call = NULL)
  d <- dim(x)
  x <- as.integer(x)
  dim(x) <- if (is.null(d)) length(x) else d
  rk_tensor_from_r(x, "int32")
}

# Keras's squeeze_or_expand_to_same_rank(): ranks differing by one with a
# trailing 1 are aligned (a rank-1 operand is expanded).
rk_align_ranks <- function(y_true, y_pred) {
  rt <- length(dim(y_true))
  rp <- length(dim(y_pred))
  if (rt == rp + 1L && dim(y_true)[rt] == 1L) {
    if (rp == 1L) y_pred <- rk_expand_dims(y_pred, -1) else y_true <- rk_squeeze(y_true, -1)
  } else if (rp == rt + 1L && dim(y_pred)[rp] == 1L) {
    if (rt == 1L) y_true <- rk_expand_dims(y_true, -1) else y_pred <- rk_squeeze(y_pred, -1)
  }
  list(y_true, y_pred)
}

# Per-sample values (an rkeras_tensor) of loss `kind` with Keras 3's formulas.
rk_loss_values <- function(kind, attrs, y_true, y_pred) {
  y_pred <- rk_as_float_tensor(y_pred, "y_pred")
  if (kind == "sparse_categorical_crossentropy") {
    y_true <- rk_as_label_tensor(y_true, "y_true")
    if (length(dim(y_true)) == length(dim(y_pred)) && utils::tail(dim(y_true), 1L) == 1L)
      y_true <- rk_squeeze(y_true, -1)
    return(rk_sparse_categorical_crossentropy(y_true, y_pred, from_logits = isTRUE(attrs$from_logits)))
  }
  y_true <- rk_as_float_tensor(y_true, "y_true")
  ls <- rk_null_or(attrs$label_smoothing, 0)
  switch(kind,
    mean_squared_error = , mean_absolute_error = , huber = {
      yy <- rk_align_ranks(y_true, y_pred)
      err <- yy[[2L]] - yy[[1L]]
      v <- switch(kind,
        mean_squared_error = rk_square(err),
        mean_absolute_error = rk_abs(err),
        huber = {
          delta <- attrs$delta
          a <- rk_abs(err)
          rk_where(a <= delta, 0.5 * rk_square(err), delta * a - 0.5 * delta^2)
        })
      rk_mean(v, axis = -1)
    },
    binary_crossentropy = {
      yy <- rk_align_ranks(y_true, y_pred)
      yt <- yy[[1L]]
      if (ls > 0) yt <- yt * (1 - ls) + 0.5 * ls
      rk_mean(rk_binary_crossentropy(yt, yy[[2L]], from_logits = isTRUE(attrs$from_logits)), axis = -1)
    },
    categorical_crossentropy = {
      if (!identical(dim(y_true), dim(y_pred)))
        rkeras_abort(sprintf(paste0("categorical_crossentropy expects `y_true` (one-hot) and `y_pred` of the same ",
                                    "shape, got %s and %s."), rk_format_dims(dim(y_true)), rk_format_dims(dim(y_pred))),
                     class = "rkeras_shape_error", call = NULL)
      if (ls > 0) y_true <- y_true * (1 - ls) + ls / utils::tail(dim(y_true), 1L)
      rk_categorical_crossentropy(y_true, y_pred, from_logits = isTRUE(attrs$from_logits))
    },
    rkeras_abort(sprintf("Unknown loss kind \"%s\".", kind), class = "rkeras_value_error", call = NULL)
  )
}

rk_format_dims <- function(d) paste0("(", paste(d, collapse = ", "), ")")

# Keras's reductions of per-sample values (an R array) with optional sample weights.
rk_reduce_values <- function(values, sample_weight, reduction) {
  values <- as.numeric(values)
  if (!is.null(sample_weight)) {
    sw <- as.numeric(if (is_rk_tensor(sample_weight)) as.array(sample_weight) else sample_weight)
    if (length(sw) != length(values) && length(sw) != 1L)
      rkeras_abort(sprintf("`sample_weight` has %d values but there are %d samples.", length(sw), length(values)),
                   class = "rkeras_shape_error", call = NULL)
    values <- values * sw
  }
  switch(reduction,
    none = values,
    sum = sum(values),
    sum_over_batch_size = , mean = if (length(values)) sum(values) / length(values) else 0)
}

rk_check_reduction <- function(reduction) {
  ok <- c("sum_over_batch_size", "sum", "none", "mean")
  if (!is.character(reduction) || length(reduction) != 1L || !reduction %in% ok)
    rkeras_abort(sprintf("Invalid value for argument `reduction`. Expected one of %s. Received: reduction=%s",
                         paste0("\"", ok, "\"", collapse = ", "), rk_describe(reduction)),
                 class = "rkeras_value_error", call = NULL)
  reduction
}

# ---- loss objects ----------------------------------------------------------------------

# Builds the loss object of `kind`; `attrs` are its settings (the engine's attrs).
rk_new_loss <- function(kind, attrs, name, reduction, dtype) {
  rk_check_reduction(reduction)
  if (!is.character(name) || length(name) != 1L || is.na(name))
    rkeras_abort("`name` must be a single string.", class = "rkeras_type_error", call = NULL)
  spec <- list(kind = kind, attrs = attrs, name = name, reduction = reduction, dtype = dtype)
  fn <- function(y_true, y_pred, sample_weight = NULL) {
    values <- as.array(rk_loss_values(spec$kind, spec$attrs, y_true, y_pred))
    rk_reduce_values(values, sample_weight, spec$reduction)
  }
  environment(fn) <- list2env(list(spec = spec), parent = asNamespace("rkeras"))
  class(fn) <- c(rk_loss_defs[[kind]]$class, "keras.src.losses.loss.Loss", "rkeras_loss", "function")
  fn
}

rk_loss_field <- function(x) get("spec", envir = environment(unclass(x)))

#' @export
`$.rkeras_loss` <- function(x, name) {
  spec <- rk_loss_field(x)
  switch(name,
    name = spec$name,
    reduction = spec$reduction,
    dtype = rk_null_or(spec$dtype, "float32"),
    get_config = function() c(list(name = spec$name, reduction = spec$reduction), spec$attrs),
    call = function(y_true, y_pred) as.array(rk_loss_values(spec$kind, spec$attrs, y_true, y_pred)),
    spec$attrs[[name]]
  )
}

#' @export
print.rkeras_loss <- function(x, ...) {
  spec <- rk_loss_field(x)
  cfg <- spec$attrs
  extra <- if (length(cfg)) paste0(", ", paste0(names(cfg), "=", vapply(cfg, format, ""), collapse = ", ")) else ""
  cat(sprintf("<%s name='%s', reduction='%s'%s>\n", sub(".*\\.", "", class(x)[1L]), spec$name,
              spec$reduction, extra))
  invisible(x)
}

# Direct call or object, as keras3: both y_true and y_pred missing -> object.
rk_loss_dispatch <- function(kind, attrs, y_true, y_pred, name, reduction, dtype, missing_data) {
  if (missing_data) return(rk_new_loss(kind, attrs, name, reduction, dtype))
  if (is.null(y_true) || is.null(y_pred))
    rkeras_abort("Both `y_true` and `y_pred` are needed to compute a loss.", class = "rkeras_value_error",
                 call = NULL)
  as.array(rk_loss_values(kind, attrs, y_true, y_pred))
}

rk_check_axis_last <- function(axis) {
  if (!is.numeric(axis) || length(axis) != 1L || axis != -1)
    rkeras_abort("Only `axis = -1` (the last axis) is supported.", class = "rkeras_unsupported_error",
                 call = NULL)
}

rk_check_no_dots <- function(dots, fn) {
  if (length(dots))
    rkeras_abort(sprintf("Unknown argument(s) to %s(): %s.", fn,
                         paste0("`", if (is.null(names(dots))) "<unnamed>" else names(dots), "`", collapse = ", ")),
                 class = "rkeras_value_error", call = NULL)
}

#' Losses
#'
#' Loss functions as in keras3. Each has two uses:
#' * called without `y_true` and `y_pred`, it returns a loss object to give to
#'   [compile()] (`loss = loss_sparse_categorical_crossentropy(from_logits = TRUE)`);
#'   the object is itself callable, `loss(y_true, y_pred, sample_weight = NULL)`,
#'   and returns the reduced loss;
#' * called with `y_true` and `y_pred`, it returns the per-sample loss values
#'   (the mean over the last axis for the element-wise losses), an R array.
#'
#' The strings `"mse"`/`"mean_squared_error"`, `"mae"`/`"mean_absolute_error"`,
#' `"binary_crossentropy"`, `"categorical_crossentropy"`,
#' `"sparse_categorical_crossentropy"` and `"huber"` given to
#' `compile(loss = )` mean these losses with their defaults.
#'
#' Formulas (Keras 3): mean squared error `mean((y_pred - y_true)^2)`; mean
#' absolute error `mean(abs(y_pred - y_true))`; Huber `0.5 * e^2` where
#' `abs(e) <= delta`, else `delta * abs(e) - 0.5 * delta^2`; the cross-entropies
#' clip probabilities to `[1e-7, 1 - 1e-7]` (or work from logits when
#' `from_logits = TRUE`); label smoothing replaces `y_true` by
#' `y_true * (1 - label_smoothing) + label_smoothing / K` (`K` = 2 for the
#' binary case, the number of classes for the categorical one). Sparse labels
#' are 0-based class ids.
#'
#' @param y_true Targets: an R array (or tensor). Omit to get a loss object.
#' @param y_pred Predictions, same shape as `y_true` (for the sparse loss, one
#'   more trailing axis holding the class scores).
#' @param from_logits Whether `y_pred` holds logits rather than probabilities.
#' @param label_smoothing Amount of label smoothing, in `[0, 1]`.
#' @param axis The class axis; only `-1` (the last) is supported.
#' @param ignore_class Accepted for compatibility; only `NULL` is supported.
#' @param delta The point where the Huber loss changes from quadratic to linear.
#' @param ... Not used.
#' @param reduction How a loss object reduces per-sample values:
#'   `"sum_over_batch_size"` (the default; mean), `"sum"`, `"none"`.
#' @param name Name of the loss object.
#' @param dtype Accepted for compatibility (computations are float32).
#'
#' @return A loss object when `y_true` and `y_pred` are missing, otherwise a
#'   numeric array of per-sample losses.
#' @examples
#' y_true <- rbind(c(0, 1), c(1, 0))
#' y_pred <- rbind(c(0.1, 0.9), c(0.3, 0.7))
#' loss_categorical_crossentropy(y_true, y_pred)
#' loss_mean_squared_error(y_true, y_pred)
#'
#' loss <- loss_sparse_categorical_crossentropy(from_logits = TRUE)
#' loss
#' loss(c(1, 0), rbind(c(-1, 2), c(0.5, 0.1)))
#' @name losses
NULL

#' @rdname losses
#' @export
loss_mean_squared_error <- function(y_true, y_pred, ..., reduction = "sum_over_batch_size",
                                    name = "mean_squared_error", dtype = NULL) {
  rk_check_no_dots(list(...), "loss_mean_squared_error")
  rk_loss_dispatch("mean_squared_error", list(), if (!missing(y_true)) y_true, if (!missing(y_pred)) y_pred,
                   name, reduction, dtype, missing(y_true) && missing(y_pred))
}

#' @rdname losses
#' @export
loss_mean_absolute_error <- function(y_true, y_pred, ..., reduction = "sum_over_batch_size",
                                     name = "mean_absolute_error", dtype = NULL) {
  rk_check_no_dots(list(...), "loss_mean_absolute_error")
  rk_loss_dispatch("mean_absolute_error", list(), if (!missing(y_true)) y_true, if (!missing(y_pred)) y_pred,
                   name, reduction, dtype, missing(y_true) && missing(y_pred))
}

#' @rdname losses
#' @export
loss_binary_crossentropy <- function(y_true, y_pred, from_logits = FALSE, label_smoothing = 0, axis = -1L, ...,
                                     reduction = "sum_over_batch_size", name = "binary_crossentropy",
                                     dtype = NULL) {
  rk_check_no_dots(list(...), "loss_binary_crossentropy")
  rk_check_flag(from_logits, "from_logits")
  rk_check_axis_last(axis)
  attrs <- list(from_logits = from_logits,
                label_smoothing = rk_check_number(label_smoothing, "label_smoothing", min = 0, max = 1),
                axis = -1L)
  rk_loss_dispatch("binary_crossentropy", attrs, if (!missing(y_true)) y_true, if (!missing(y_pred)) y_pred,
                   name, reduction, dtype, missing(y_true) && missing(y_pred))
}

#' @rdname losses
#' @export
loss_categorical_crossentropy <- function(y_true, y_pred, from_logits = FALSE, label_smoothing = 0, axis = -1L,
                                          ..., reduction = "sum_over_batch_size",
                                          name = "categorical_crossentropy", dtype = NULL) {
  rk_check_no_dots(list(...), "loss_categorical_crossentropy")
  rk_check_flag(from_logits, "from_logits")
  rk_check_axis_last(axis)
  attrs <- list(from_logits = from_logits,
                label_smoothing = rk_check_number(label_smoothing, "label_smoothing", min = 0, max = 1),
                axis = -1L)
  rk_loss_dispatch("categorical_crossentropy", attrs, if (!missing(y_true)) y_true,
                   if (!missing(y_pred)) y_pred, name, reduction, dtype, missing(y_true) && missing(y_pred))
}

#' @rdname losses
#' @export
loss_sparse_categorical_crossentropy <- function(y_true, y_pred, from_logits = FALSE, ignore_class = NULL,
                                                 axis = -1L, ..., reduction = "sum_over_batch_size",
                                                 name = "sparse_categorical_crossentropy", dtype = NULL) {
  rk_check_no_dots(list(...), "loss_sparse_categorical_crossentropy")
  rk_check_flag(from_logits, "from_logits")
  rk_check_axis_last(axis)
  if (!is.null(ignore_class))
    rkeras_abort("`ignore_class` is not supported yet.", class = "rkeras_unsupported_error", call = NULL)
  attrs <- list(from_logits = from_logits, axis = -1L)
  rk_loss_dispatch("sparse_categorical_crossentropy", attrs, if (!missing(y_true)) y_true,
                   if (!missing(y_pred)) y_pred, name, reduction, dtype, missing(y_true) && missing(y_pred))
}

#' @rdname losses
#' @export
loss_huber <- function(y_true, y_pred, delta = 1, ..., reduction = "sum_over_batch_size", name = "huber_loss",
                       dtype = NULL) {
  rk_check_no_dots(list(...), "loss_huber")
  attrs <- list(delta = rk_check_number(delta, "delta", min = 0, min_inclusive = FALSE))
  rk_loss_dispatch("huber", attrs, if (!missing(y_true)) y_true, if (!missing(y_pred)) y_pred,
                   name, reduction, dtype, missing(y_true) && missing(y_pred))
}

# The loss_*() functions themselves, as compile() may receive them bare.
rk_loss_functions <- function() {
  list(mean_squared_error = loss_mean_squared_error, mean_absolute_error = loss_mean_absolute_error,
       binary_crossentropy = loss_binary_crossentropy, categorical_crossentropy = loss_categorical_crossentropy,
       sparse_categorical_crossentropy = loss_sparse_categorical_crossentropy, huber = loss_huber)
}

# Resolves one compile() loss identifier into a loss object.
rk_get_loss <- function(x, arg = "loss") {
  if (inherits(x, "rkeras_loss")) return(x)
  if (is.character(x) && length(x) == 1L && !is.na(x)) {
    kind <- rk_loss_aliases[x]
    if (is.na(kind))
      rkeras_abort(sprintf("Could not interpret loss identifier: \"%s\". Known losses: %s.", x,
                           paste0("\"", c("mse", "mae", names(rk_loss_defs)), "\"", collapse = ", ")),
                   class = "rkeras_value_error", call = NULL)
    return(rk_loss_functions()[[kind]]())
  }
  if (is.function(x)) {
    fns <- rk_loss_functions()
    for (k in names(fns)) if (identical(x, fns[[k]])) return(fns[[k]]())
    rkeras_abort(paste0("Custom R loss functions are not supported yet; use a loss_*() object or one of ",
                        paste0("\"", names(rk_loss_defs), "\"", collapse = ", "), "."),
                 class = "rkeras_unsupported_error", call = NULL)
  }
  rkeras_abort(sprintf("`%s` must be a string such as \"mse\" or a loss object such as loss_mean_squared_error(), got %s.",
                       arg, rk_describe(x)), class = "rkeras_type_error", call = NULL)
}

# The engine's description of a loss object: list(kind, attrs, name).
rk_loss_spec <- function(loss) {
  spec <- rk_loss_field(loss)
  if (spec$reduction != "sum_over_batch_size")
    rkeras_abort(sprintf("Loss reduction \"%s\" is not supported in compile() yet; use \"sum_over_batch_size\".",
                         spec$reduction), class = "rkeras_unsupported_error", call = NULL)
  list(kind = spec$kind, attrs = spec$attrs, name = spec$name)
}
