# Core layers (keras3's layer_dense(), layer_activation(), layer_dropout(), the reshaping
# layers, layer_identity() and layer_lambda()), and the argument checks every layer
# constructor uses. Each constructor validates and converts its arguments first (classed
# errors naming the argument and the value given), builds the layer's Keras config (the
# snake_case keys of Keras's get_config()) and hands it to create_layer() (R/layers.R),
# which composes it with `object` as keras3 does.

# ---- argument checks (shared by the layer constructors) -------------------------------

# A single whole number >= `min` (or NULL when allowed), as an integer.
rk_check_int_arg <- function(x, arg, min = 1L, allow_null = FALSE) {
  if (allow_null && is.null(x)) return(NULL)
  ok <- is.numeric(x) && length(x) == 1L && !is.na(x) &&
    is.finite(x) && x == trunc(x) && x >= min
  if (!ok) {
    what <- if (min == 1L) "a positive integer" else if (min == 0L) "a non-negative integer" else
      sprintf("an integer >= %d", min)
    if (allow_null) what <- paste(what, "or NULL")
    rk_abort(sprintf("`%s` must be %s, got %s", arg, what, rk_arg_repr(x)), "rkeras_value_error")
  }
  as.integer(x)
}

# A single finite number in [lower, upper] (`upper_open`: upper excluded), as a double.
rk_check_num_arg <- function(x, arg, lower = -Inf, upper = Inf, upper_open = FALSE,
                             allow_null = FALSE) {
  if (allow_null && is.null(x)) return(NULL)
  ok <- is.numeric(x) && length(x) == 1L && !is.na(x) && is.finite(x) && x >= lower &&
    (if (upper_open) x < upper else x <= upper)
  if (!ok) {
    range <- if (is.finite(lower) && is.finite(upper)) {
      sprintf(" in [%s, %s%s", format(lower), format(upper), if (upper_open) ")" else "]")
    } else if (is.finite(lower)) {
      sprintf(" >= %s", format(lower))
    } else if (is.finite(upper)) {
      sprintf(" <= %s", format(upper))
    } else ""
    what <- paste0("a single finite number", range)
    if (allow_null) what <- paste(what, "or NULL")
    rk_abort(sprintf("`%s` must be %s, got %s", arg, what, rk_arg_repr(x)), "rkeras_value_error")
  }
  as.numeric(x)
}

# TRUE or FALSE.
rk_check_flag_arg <- function(x, arg) {
  if (!is.logical(x) || length(x) != 1L || is.na(x))
    rk_abort(sprintf("`%s` must be TRUE or FALSE, got %s", arg, rk_arg_repr(x)), "rkeras_type_error")
  x
}

# A keras3 1-based axis (negative counts from the end; 0 is an error) as Keras's 0-based one.
rk_check_axis_arg <- function(x, arg = "axis", allow_null = FALSE, several = FALSE) {
  if (allow_null && is.null(x)) return(NULL)
  if (is.list(x) && !is.object(x)) x <- unlist(x)
  ok <- is.numeric(x) && length(x) >= 1L && (several || length(x) == 1L) && !anyNA(x) &&
    all(is.finite(x)) && all(x == trunc(x)) && all(x != 0)
  if (!ok) {
    what <- if (several) "whole numbers other than 0" else "a single whole number other than 0"
    rk_abort(sprintf("`%s` must be %s (axes are 1-based, -1 is the last), got %s", arg, what,
                     rk_arg_repr(x)), "rkeras_value_error")
  }
  x <- as.integer(x)
  ifelse(x > 0L, x - 1L, x)
}

# A shape (numeric vector or list; NA/NULL entries are unknown) as an integer vector with
# NA for unknown entries. `allow_na`: whether unknown entries are allowed.
rk_check_shape_arg <- function(x, arg, allow_null = FALSE, allow_na = TRUE, min = 1L) {
  if (allow_null && is.null(x)) return(NULL)
  if (is.list(x) && !is.object(x)) {
    x <- vapply(x, function(v) if (is.null(v) || (length(v) == 1L && is.na(v))) NA_real_ else
      if (is.numeric(v) && length(v) == 1L) as.numeric(v) else NaN, numeric(1))
  }
  if (is.logical(x) && length(x) && all(is.na(x))) x <- as.numeric(x)
  ok <- is.numeric(x) && !any(is.nan(x)) &&
    all(is.na(x) | (is.finite(x) & x == trunc(x) & x >= min)) && (allow_na || !anyNA(x))
  if (!ok) {
    what <- sprintf("a vector of integers >= %d%s", min, if (allow_na) " (NA for unknown)" else "")
    rk_abort(sprintf("`%s` must be %s, got %s", arg, what, rk_arg_repr(x)), "rkeras_value_error")
  }
  as.integer(x)
}

# A seed: NULL or a single non-negative whole number, as an integer.
rk_check_seed_arg <- function(seed, arg = "seed") {
  if (is.null(seed)) return(NULL)
  ok <- is.numeric(seed) && length(seed) == 1L && !is.na(seed) && seed >= 0 &&
    seed == trunc(seed) && seed <= .Machine$integer.max
  if (!ok)
    rk_abort(sprintf("`%s` must be NULL or a single non-negative integer, got %s", arg,
                     rk_arg_repr(seed)), "rkeras_value_error")
  as.integer(seed)
}

# A dropout-like rate in [0, 1] (Keras 3 accepts 1: everything dropped), or [0, 1).
rk_check_rate_arg <- function(rate, arg = "rate", upper_open = FALSE) {
  if (missing(rate))
    rk_abort(sprintf("`%s` is missing; it must be a number in [0, 1%s", arg, if (upper_open) ")" else "]"),
             "rkeras_value_error")
  rk_check_num_arg(rate, arg, lower = 0, upper = 1, upper_open = upper_open)
}

# An initializer / regularizer / constraint argument (string, object or function; NULL = none,
# or for an initializer the layer's default): resolved once to check it, so a bad value fails
# before the layer exists, with the argument named. The config keeps the value as given.
rk_check_weight_option_arg <- function(x, arg, kind = c("initializer", "regularizer", "constraint")) {
  kind <- match.arg(kind)
  if (is.null(x)) return(NULL)
  getter <- switch(kind, initializer = rk_get_initializer, regularizer = rk_get_regularizer,
                   constraint = rk_get_constraint)
  tryCatch(getter(x), rkeras_error = function(e) {
    rkeras_abort(sprintf("`%s`: %s", arg, conditionMessage(e)), class = class(e)[1L], call = NULL)
  })
  x
}

# An argument that is required (no default in keras3).
rk_require_arg <- function(missing, arg, what) {
  if (missing) rk_abort(sprintf("`%s` is missing; it must be %s", arg, what), "rkeras_value_error")
}

# ---- core layers ------------------------------------------------------------------------

#' Just your regular densely-connected NN layer
#'
#' `layer_dense()` implements `output = activation(dot(input, kernel) + bias)`, where
#' `kernel` is a weight matrix of shape `(input_dim, units)` and `bias` a vector of length
#' `units` (when `use_bias = TRUE`). An input of rank greater than 2 is multiplied along its
#' last axis.
#'
#' @param object What to compose the new layer with: missing or `NULL` returns the layer
#'   itself; a Sequential model gets the layer added (and is returned invisibly); a symbolic
#'   input (from [keras_input()]), a tensor or an R array is passed through the layer and the
#'   result returned.
#' @param units Positive integer, dimensionality of the output space.
#' @param activation Activation function: a name such as `"relu"` (see [activation_relu()]
#'   and the other `activation_*()` functions), one of those functions, or any R function of
#'   a tensor. `NULL` means linear (`a(x) = x`).
#' @param use_bias Whether the layer uses a bias vector.
#' @param kernel_initializer,bias_initializer Initializers for the kernel and the bias: a
#'   name (`"glorot_uniform"`, `"zeros"`, ...) or an `initializer_*()` object.
#' @param kernel_regularizer,bias_regularizer Regularizers for the kernel and the bias
#'   (`regularizer_l1()`, `regularizer_l2()`, `regularizer_l1_l2()`, or a name), or `NULL`.
#' @param activity_regularizer Regularizer for the layer's output, or `NULL`.
#' @param kernel_constraint,bias_constraint Constraints for the kernel and the bias
#'   (`constraint_maxnorm()`, `constraint_nonneg()`, ..., or a name), or `NULL`.
#' @param lora_rank,lora_alpha LoRA fine-tuning settings of Keras; not supported by rkeras
#'   (must stay `NULL`).
#' @param ... Standard layer arguments: `name`, `dtype`, `trainable`, and `input_shape`
#'   (or `batch_size`, `batch_input_shape`) for the first layer of a Sequential model.
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object` (see above).
#' @family layers
#' @examples
#' model <- keras_model_sequential(input_shape = 4) |>
#'   layer_dense(units = 8, activation = "relu") |>
#'   layer_dense(units = 2)
#' model
#' @export
layer_dense <- function(object, units, activation = NULL, use_bias = TRUE,
                        kernel_initializer = "glorot_uniform", bias_initializer = "zeros",
                        kernel_regularizer = NULL, bias_regularizer = NULL,
                        activity_regularizer = NULL, kernel_constraint = NULL,
                        bias_constraint = NULL, lora_rank = NULL, lora_alpha = NULL, ...) {
  rk_require_arg(missing(units), "units", "a positive integer")
  units <- rk_check_int_arg(units, "units")
  activation <- rk_check_activation(activation)
  use_bias <- rk_check_flag_arg(use_bias, "use_bias")
  rk_check_weight_option_arg(kernel_initializer, "kernel_initializer", "initializer")
  rk_check_weight_option_arg(bias_initializer, "bias_initializer", "initializer")
  rk_check_weight_option_arg(kernel_regularizer, "kernel_regularizer", "regularizer")
  rk_check_weight_option_arg(bias_regularizer, "bias_regularizer", "regularizer")
  rk_check_weight_option_arg(activity_regularizer, "activity_regularizer", "regularizer")
  rk_check_weight_option_arg(kernel_constraint, "kernel_constraint", "constraint")
  rk_check_weight_option_arg(bias_constraint, "bias_constraint", "constraint")
  if (!is.null(lora_rank) || !is.null(lora_alpha))
    rk_abort("`lora_rank` and `lora_alpha` (LoRA) are not supported by rkeras; leave them NULL",
             "rkeras_value_error")
  config <- list(
    units = units, activation = activation, use_bias = use_bias,
    kernel_initializer = kernel_initializer, bias_initializer = bias_initializer,
    kernel_regularizer = kernel_regularizer, bias_regularizer = bias_regularizer,
    activity_regularizer = activity_regularizer,
    kernel_constraint = kernel_constraint, bias_constraint = bias_constraint
  )
  create_layer("Dense", object, config, ..., module = "core")
}

#' Applies an activation function to an output
#'
#' @inheritParams layer_dense
#' @param activation Activation function: a name such as `"relu"`, one of the
#'   `activation_*()` functions, or any R function of a tensor.
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family layers
#' @examples
#' layer <- layer_activation(activation = "relu")
#' as.array(layer(matrix(c(-1, 2, -3, 4), nrow = 2)))
#' @export
layer_activation <- function(object, activation, ...) {
  rk_require_arg(missing(activation), "activation", "an activation name or a function")
  activation <- rk_check_activation(activation, allow_null = FALSE)
  create_layer("Activation", object, list(activation = activation), ...,
               module = "keras.src.layers.activations.activation")
}

#' Applies dropout to the input
#'
#' During training, randomly sets input units to 0 with frequency `rate` and scales the
#' others by `1 / (1 - rate)` so that the expected sum is unchanged. Outside training
#' (`predict()`, `evaluate()`, calls without `training = TRUE`) the layer does nothing.
#'
#' @inheritParams layer_dense
#' @param rate Number in `[0, 1]`: the fraction of the input units to drop.
#' @param noise_shape Shape of the binary dropout mask that is multiplied with the input
#'   (`NA` for the batch or any dimension taken from the input), e.g. `c(NA, 1, NA)` to drop
#'   the same features at every timestep. `NULL` (default) drops each unit independently.
#' @param seed Integer seed of the layer's dropout stream, or `NULL` (drawn from R's RNG, so
#'   [set.seed()] makes runs reproducible).
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family layers
#' @examples
#' model <- keras_model_sequential(input_shape = 10) |>
#'   layer_dense(16, activation = "relu") |>
#'   layer_dropout(rate = 0.5) |>
#'   layer_dense(1)
#' @export
layer_dropout <- function(object, rate, noise_shape = NULL, seed = NULL, ...) {
  rate <- rk_check_rate_arg(rate)
  noise_shape <- rk_check_shape_arg(noise_shape, "noise_shape", allow_null = TRUE)
  seed <- rk_check_seed_arg(seed)
  create_layer("Dropout", object, list(rate = rate, seed = seed, noise_shape = noise_shape),
               ..., module = "regularization")
}

#' Flattens an input
#'
#' Reshapes each sample to a vector, in row-major order (the last axis varies fastest),
#' as Keras does; the batch axis is kept.
#'
#' @inheritParams layer_dense
#' @param data_format `NULL` (the [config_image_data_format()] default), `"channels_last"`
#'   or `"channels_first"` (then the input is moved to channels-last order first, so weights
#'   trained in either layout agree).
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family layers
#' @examples
#' layer <- layer_flatten()
#' dim(layer(array(1:24, c(2, 3, 4))))
#' @export
layer_flatten <- function(object, data_format = NULL, ...) {
  data_format <- rk_check_data_format_arg(data_format)
  create_layer("Flatten", object, list(data_format = data_format), ..., module = "reshaping")
}

# NULL -> config_image_data_format(); else "channels_last" / "channels_first".
rk_check_data_format_arg <- function(data_format, arg = "data_format") {
  if (is.null(data_format)) return(config_image_data_format())
  ok <- c("channels_last", "channels_first")
  if (!is.character(data_format) || length(data_format) != 1L || !data_format %in% ok)
    rk_abort(sprintf("`%s` must be NULL, \"channels_last\" or \"channels_first\", got %s", arg,
                     rk_arg_repr(data_format)), "rkeras_value_error")
  data_format
}

#' Reshapes an input to a given shape
#'
#' The batch axis is kept; each sample is reshaped in row-major order (as Keras and
#' [array_reshape()] do). One entry of `target_shape` may be `NA` (or `-1`): it is inferred
#' from the size of the input.
#'
#' @inheritParams layer_dense
#' @param target_shape Integer vector (or list): the shape of each output sample, without
#'   the batch axis.
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family layers
#' @examples
#' layer <- layer_reshape(target_shape = c(2, 3))
#' dim(layer(matrix(1:12, nrow = 2)))
#' @export
layer_reshape <- function(object, target_shape, ...) {
  rk_require_arg(missing(target_shape), "target_shape", "a vector of positive integers")
  if (is.numeric(target_shape)) target_shape[!is.na(target_shape) & target_shape == -1] <- NA
  if (is.list(target_shape) && !is.object(target_shape))
    target_shape <- lapply(target_shape, function(d) if (is.numeric(d) && length(d) == 1L && !is.na(d) && d == -1) NA else d)
  target_shape <- rk_check_shape_arg(target_shape, "target_shape")
  if (length(target_shape) == 0L)
    rk_abort("`target_shape` must have at least one entry, got an empty vector", "rkeras_value_error")
  if (sum(is.na(target_shape)) > 1L)
    rk_abort(sprintf("`target_shape` may have at most one unknown (NA or -1) entry, got %s",
                     rk_arg_repr(target_shape)), "rkeras_value_error")
  # Keras's config writes an unknown entry as -1.
  target_shape[is.na(target_shape)] <- -1L
  create_layer("Reshape", object, list(target_shape = target_shape), ..., module = "reshaping")
}

#' Permutes the dimensions of an input
#'
#' Useful e.g. to connect RNNs and convnets. The batch axis is not part of `dims`.
#'
#' @inheritParams layer_dense
#' @param dims Integer vector: a permutation of `1:k` for an input of rank `k + 1` (axes are
#'   counted without the batch axis, starting at 1), e.g. `c(2, 1)` swaps the first and
#'   second axes of each sample.
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family layers
#' @examples
#' layer <- layer_permute(dims = c(2, 1))
#' dim(layer(array(1:24, c(2, 3, 4))))
#' @export
layer_permute <- function(object, dims, ...) {
  rk_require_arg(missing(dims), "dims", "a permutation of 1:k")
  dims <- rk_check_shape_arg(dims, "dims", allow_na = FALSE)
  if (length(dims) == 0L || !setequal(dims, seq_along(dims)) || anyDuplicated(dims))
    rk_abort(sprintf("`dims` must be a permutation of 1:%d (axes without the batch axis), got %s",
                     max(1L, length(dims)), rk_arg_repr(dims)), "rkeras_value_error")
  create_layer("Permute", object, list(dims = dims), ..., module = "reshaping")
}

#' Repeats the input n times
#'
#' An input of shape `(batch, features)` becomes `(batch, n, features)`.
#'
#' @inheritParams layer_dense
#' @param n Positive integer, the number of repetitions.
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family layers
#' @examples
#' layer <- layer_repeat_vector(n = 3)
#' dim(layer(matrix(1:8, nrow = 2)))
#' @export
layer_repeat_vector <- function(object, n, ...) {
  rk_require_arg(missing(n), "n", "a positive integer")
  n <- rk_check_int_arg(n, "n")
  create_layer("RepeatVector", object, list(n = n), ..., module = "reshaping")
}

#' Identity layer
#'
#' Returns its input unchanged. Useful as a placeholder (e.g. a branch that does nothing).
#'
#' @inheritParams layer_dense
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family layers
#' @examples
#' layer <- layer_identity()
#' as.array(layer(matrix(1:4, nrow = 2)))
#' @export
layer_identity <- function(object, ...) {
  create_layer("Identity", object, list(), ..., module = "core")
}

#' Wraps an arbitrary R function as a layer
#'
#' The function is called on the layer's input tensor (a list of tensors for several
#' inputs) and must return a tensor; it may use the tensor arithmetic of rkeras
#' (`x * 2`, `exp(x)`, ...) and the `activation_*()` functions. It runs inside the engine,
#' so the layer also works during [fit()] (gradients flow through the engine operations it
#' uses). A Lambda layer has no weights.
#'
#' @inheritParams layer_dense
#' @param f The function: `function(x)` or, with `arguments`, `function(x, <arguments>)`.
#' @param output_shape The shape of each output sample (without the batch axis), or a
#'   function of the input shape (with `NA` for the batch) returning it, or `NULL` to infer
#'   it by calling `f` on a small example batch.
#' @param mask `NULL` or a function computing the output mask (accepted for compatibility;
#'   masks are not propagated by rkeras yet).
#' @param arguments Optional named list of extra arguments passed to `f`.
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family layers
#' @examples
#' layer <- layer_lambda(f = function(x) x * 2 + 1)
#' as.array(layer(matrix(1:4, nrow = 2)))
#' @export
layer_lambda <- function(object, f, output_shape = NULL, mask = NULL, arguments = NULL, ...) {
  rk_require_arg(missing(f), "f", "a function")
  if (!is.function(f))
    rk_abort(sprintf("`f` must be a function, got %s", rk_arg_repr(f)), "rkeras_type_error")
  if (!is.null(output_shape) && !is.function(output_shape))
    output_shape <- rk_check_shape_arg(output_shape, "output_shape")
  if (!is.null(mask) && !is.function(mask))
    rk_abort(sprintf("`mask` must be NULL or a function, got %s", rk_arg_repr(mask)),
             "rkeras_type_error")
  if (!is.null(arguments) && (!is.list(arguments) || is.null(names(arguments)) ||
                              any(!nzchar(names(arguments)))))
    rk_abort(sprintf("`arguments` must be NULL or a named list, got %s", rk_arg_repr(arguments)),
             "rkeras_type_error")
  # The engine calls r_fn(x) (or r_fn(x, training = )); `arguments` are bound here.
  takes_training <- "training" %in% names(formals(args(f)))
  r_fn <- if (takes_training) {
    function(x, training) do.call(f, c(list(x), arguments, list(training = training)))
  } else {
    function(x) do.call(f, c(list(x), arguments))
  }
  config <- list(`function` = f, output_shape = output_shape, mask = mask, arguments = arguments)
  create_layer("Lambda", object, config, ..., module = "keras.src.layers.core.lambda_layer",
               r_fn = r_fn, r_output_shape = output_shape)
}
