# Activation functions (keras3's activation_*()): each computes on an R array or an
# rkeras_tensor through the engine ops and returns an rkeras_tensor (gradients flow through
# them). The same names are the activation strings layers accept (`activation = "relu"`),
# which the engine applies natively; passing one of these functions as `activation` is the
# same as passing its name.

# Plain R input becomes a floating tensor: doubles keep float64 (as keras3's ops convert
# R doubles), integers and logicals take config_floatx() (activations are float maths).
rk_activation_input <- function(x) {
  if (is_rk_tensor(x)) {
    if (rk_tensor_dtype(x) %in% c("int32", "bool")) return(rk_cast(x, config_floatx()))
    return(x)
  }
  if (!(is.numeric(x) || is.logical(x)) || is.object(x))
    rk_abort(sprintf("`x` must be a numeric array or an rkeras_tensor, not %s", rk_obj_kind(x)),
             "rkeras_type_error")
  if (is.double(x)) rk_tensor_from_r(x, NULL) else rk_tensor_from_r(x, config_floatx())
}

rk_activation_num <- function(x, arg, allow_null = FALSE, min = -Inf) {
  if (allow_null && is.null(x)) return(NULL)
  if (!is.numeric(x) || length(x) != 1L || is.na(x) || x < min) {
    what <- if (is.finite(min)) sprintf("a single number >= %s", format(min)) else "a single number"
    if (allow_null) what <- paste(what, "or NULL")
    rk_abort(sprintf("`%s` must be %s, got %s", arg, what, deparse1(x)), "rkeras_value_error")
  }
  as.numeric(x)
}

#' Rectified linear unit activation function
#'
#' With default values, `max(x, 0)`. Other values give a thresholded, capped or leaky
#' ReLU: `f(x) = max_value` for `x >= max_value`, `x` for `threshold <= x < max_value`,
#' and `negative_slope * (x - threshold)` otherwise.
#'
#' @param x Input: an R numeric array or an `rkeras_tensor`.
#' @param negative_slope Slope for values below the threshold (default 0).
#' @param max_value Largest value of the output, or `NULL` for no cap.
#' @param threshold Values below it are damped to zero (or to the leaky slope).
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_relu(c(-2, -0.5, 0, 1, 10)))
#' as.array(activation_relu(c(-2, -0.5, 0, 1, 10), negative_slope = 0.1, max_value = 6))
#' @export
activation_relu <- function(x, negative_slope = 0, max_value = NULL, threshold = 0) {
  negative_slope <- rk_activation_num(negative_slope, "negative_slope", min = 0)
  max_value <- rk_activation_num(max_value, "max_value", allow_null = TRUE)
  threshold <- rk_activation_num(threshold, "threshold")
  x <- rk_activation_input(x)
  rk_relu_general(x, negative_slope, max_value, threshold)
}

# Keras's relu with all options, built from engine ops.
rk_relu_general <- function(x, negative_slope = 0, max_value = NULL, threshold = 0) {
  if (negative_slope != 0 && is.null(max_value) && threshold == 0)
    return(rk_leaky_relu(x, negative_slope = negative_slope))
  if (negative_slope != 0) {
    negative_part <- if (threshold != 0) rk_relu(rk_negative(x) + threshold) else rk_relu(rk_negative(x))
  }
  clip_max <- !is.null(max_value)
  if (threshold != 0) {
    x <- x * rk_cast(rk_greater(x, threshold), rk_tensor_dtype(x))
  } else if (clip_max && max_value == 6) {
    x <- rk_relu6(x)
    clip_max <- FALSE
  } else {
    x <- rk_relu(x)
  }
  if (clip_max) x <- rk_clip(x, 0, max_value)
  if (negative_slope != 0) x <- x - negative_part * negative_slope
  x
}

#' Sigmoid activation function
#'
#' `sigmoid(x) = 1 / (1 + exp(-x))`.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_sigmoid(c(-1, 0, 1)))
#' @export
activation_sigmoid <- function(x) rk_sigmoid(rk_activation_input(x))

#' Softmax activation function
#'
#' Exponentials normalised to sum to one along `axis`.
#'
#' @inheritParams activation_relu
#' @param axis The axis along which the softmax is taken (1-based; `-1`, the default, is
#'   the last axis).
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_softmax(matrix(c(1, 2, 3, 1, 1, 1), nrow = 2, byrow = TRUE)))
#' @export
activation_softmax <- function(x, axis = -1L) rk_softmax(rk_activation_input(x), axis = axis)

#' Log-softmax activation function
#'
#' `log(softmax(x))` computed stably along `axis`.
#'
#' @inheritParams activation_softmax
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_log_softmax(c(1, 2, 3)))
#' @export
activation_log_softmax <- function(x, axis = -1L) rk_log_softmax(rk_activation_input(x), axis = axis)

#' Hyperbolic tangent activation function
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_tanh(c(-1, 0, 1)))
#' @export
activation_tanh <- function(x) rk_tanh(rk_activation_input(x))

#' Linear (identity) activation function
#'
#' Returns its input unchanged (as a tensor).
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` equal to `x`.
#' @family activations
#' @examples
#' as.array(activation_linear(c(-1, 0, 1)))
#' @export
activation_linear <- function(x) rk_activation_input(x)

#' Exponential linear unit (ELU) activation function
#'
#' `x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise.
#'
#' @inheritParams activation_relu
#' @param alpha Scale of the negative part.
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_elu(c(-1, 0, 1)))
#' @export
activation_elu <- function(x, alpha = 1) {
  alpha <- rk_activation_num(alpha, "alpha")
  rk_elu(rk_activation_input(x), alpha = alpha)
}

#' Scaled exponential linear unit (SELU) activation function
#'
#' `scale * elu(x, alpha)` with `alpha = 1.67326324` and `scale = 1.05070098`.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_selu(c(-1, 0, 1)))
#' @export
activation_selu <- function(x) rk_selu(rk_activation_input(x))

#' Softplus activation function
#'
#' `log(exp(x) + 1)`.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_softplus(c(-1, 0, 1)))
#' @export
activation_softplus <- function(x) rk_softplus(rk_activation_input(x))

#' Softsign activation function
#'
#' `x / (abs(x) + 1)`.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_softsign(c(-1, 0, 1)))
#' @export
activation_softsign <- function(x) rk_softsign(rk_activation_input(x))

#' Gaussian error linear unit (GELU) activation function
#'
#' `x * P(X <= x)` for a standard normal `X`: exactly `0.5 * x * (1 + erf(x / sqrt(2)))`,
#' or the tanh approximation when `approximate = TRUE`.
#'
#' @inheritParams activation_relu
#' @param approximate Whether to use the tanh approximation.
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_gelu(c(-1, 0, 1)))
#' @export
activation_gelu <- function(x, approximate = FALSE) {
  rk_check_flag(approximate, "approximate")
  rk_gelu(rk_activation_input(x), approximate = approximate)
}

#' Swish (or SiLU) activation function
#'
#' `x * sigmoid(x)`. `activation_swish()` is the same function under Keras's other name.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_silu(c(-1, 0, 1)))
#' @export
activation_silu <- function(x) rk_silu(rk_activation_input(x))

#' @rdname activation_silu
#' @export
activation_swish <- function(x) activation_silu(x)

#' Mish activation function
#'
#' `x * tanh(softplus(x))`.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_mish(c(-1, 0, 1)))
#' @export
activation_mish <- function(x) rk_mish(rk_activation_input(x))

#' Exponential activation function
#'
#' `exp(x)`.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_exponential(c(-1, 0, 1)))
#' @export
activation_exponential <- function(x) rk_exp(rk_activation_input(x))

#' Leaky ReLU activation function
#'
#' `x` for `x >= 0`, `negative_slope * x` otherwise.
#'
#' @inheritParams activation_relu
#' @param negative_slope Slope of the negative part (default 0.2, as in Keras).
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_leaky_relu(c(-1, 0, 1)))
#' @export
activation_leaky_relu <- function(x, negative_slope = 0.2) {
  negative_slope <- rk_activation_num(negative_slope, "negative_slope")
  rk_leaky_relu(rk_activation_input(x), negative_slope = negative_slope)
}

#' Hard sigmoid activation function
#'
#' A piecewise-linear approximation of the sigmoid, as in Keras 3:
#' `relu6(x + 3) / 6`, i.e. 0 below -3, 1 above 3 and `x / 6 + 0.5` between.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_hard_sigmoid(c(-4, 0, 1, 4)))
#' @export
activation_hard_sigmoid <- function(x) rk_hard_sigmoid(rk_activation_input(x), slope = 1 / 6, offset = 0.5)

#' Hard SiLU (hard swish) activation function
#'
#' `x * hard_sigmoid(x)`, i.e. `x * relu6(x + 3) / 6`. `activation_hard_swish()` is the
#' same function under its other name.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_hard_silu(c(-4, -1, 0, 1, 4)))
#' @export
activation_hard_silu <- function(x) {
  x <- rk_activation_input(x)
  x * rk_hard_sigmoid(x, slope = 1 / 6, offset = 0.5)
}

#' @rdname activation_hard_silu
#' @export
activation_hard_swish <- function(x) activation_hard_silu(x)

#' ReLU6 activation function
#'
#' `min(max(x, 0), 6)`.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_relu6(c(-1, 3, 10)))
#' @export
activation_relu6 <- function(x) rk_relu6(rk_activation_input(x))

#' Hard tanh activation function
#'
#' `-1` below -1, `1` above 1, `x` between.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_hard_tanh(c(-2, 0.5, 2)))
#' @export
activation_hard_tanh <- function(x) rk_clip(rk_activation_input(x), -1, 1)

#' Log-sigmoid activation function
#'
#' `log(sigmoid(x)) = -softplus(-x)`.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_log_sigmoid(c(-1, 0, 1)))
#' @export
activation_log_sigmoid <- function(x) rk_negative(rk_softplus(rk_negative(rk_activation_input(x))))

#' Continuously differentiable exponential linear unit (CELU) activation function
#'
#' `max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`.
#'
#' @inheritParams activation_relu
#' @param alpha Positive number, the scale of the negative part.
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_celu(c(-1, 0, 1)))
#' @export
activation_celu <- function(x, alpha = 1) {
  alpha <- rk_activation_num(alpha, "alpha")
  if (alpha <= 0) rk_abort(sprintf("`alpha` must be positive, got %s", format(alpha)), "rkeras_value_error")
  x <- rk_activation_input(x)
  rk_relu(x) + rk_minimum(rk_exp(x / alpha) - 1, 0) * alpha
}

#' Tanh-shrink activation function
#'
#' `x - tanh(x)`.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_tanh_shrink(c(-1, 0, 1)))
#' @export
activation_tanh_shrink <- function(x) {
  x <- rk_activation_input(x)
  x - rk_tanh(x)
}

#' Soft-shrink activation function
#'
#' `x - threshold` above `threshold`, `x + threshold` below `-threshold`, 0 between.
#'
#' @inheritParams activation_relu
#' @param threshold Non-negative number (default 0.5).
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_soft_shrink(c(-1, 0.2, 1)))
#' @export
activation_soft_shrink <- function(x, threshold = 0.5) {
  threshold <- rk_activation_num(threshold, "threshold", min = 0)
  x <- rk_activation_input(x)
  zero <- x * 0
  rk_where(rk_greater(x, threshold), x - threshold,
           rk_where(rk_less(x, -threshold), x + threshold, zero))
}

#' Hard-shrink activation function
#'
#' `x` where `abs(x) > threshold`, 0 elsewhere.
#'
#' @inheritParams activation_soft_shrink
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_hard_shrink(c(-1, 0.2, 1)))
#' @export
activation_hard_shrink <- function(x, threshold = 0.5) {
  threshold <- rk_activation_num(threshold, "threshold", min = 0)
  x <- rk_activation_input(x)
  rk_where(rk_greater(rk_abs(x), threshold), x, x * 0)
}

#' Squareplus activation function
#'
#' `(x + sqrt(x^2 + b)) / 2`, a smooth approximation of ReLU.
#'
#' @inheritParams activation_relu
#' @param b Non-negative number, the smoothness (default 4).
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_squareplus(c(-1, 0, 1)))
#' @export
activation_squareplus <- function(x, b = 4L) {
  b <- rk_activation_num(b, "b", min = 0)
  x <- rk_activation_input(x)
  (x + rk_sqrt(rk_square(x) + b)) / 2
}

#' SparsePlus activation function
#'
#' 0 for `x <= -1`, `(x + 1)^2 / 4` for `-1 < x < 1`, `x` for `x >= 1`.
#'
#' @inheritParams activation_relu
#' @return An `rkeras_tensor` of the same shape as `x`.
#' @family activations
#' @examples
#' as.array(activation_sparse_plus(c(-2, 0, 2)))
#' @export
activation_sparse_plus <- function(x) {
  x <- rk_activation_input(x)
  rk_where(rk_less_equal(x, -1), x * 0,
           rk_where(rk_greater_equal(x, 1), x, rk_square(x + 1) / 4))
}

# ---- activation identifiers ------------------------------------------------------------

# The activation names layers accept as strings: Keras's names that the engine applies
# natively (nn::apply_activation; "swish" and "hard_swish" are Keras's aliases of "silu" and
# "hard_silu"). Each has an activation_<name>() function; keep in step with the engine.
rk_activation_names <- function() {
  c("relu", "sigmoid", "softmax", "tanh", "linear", "elu", "selu", "softplus", "softsign",
    "gelu", "silu", "swish", "mish", "exponential", "leaky_relu", "hard_sigmoid",
    "hard_silu", "hard_swish", "log_softmax", "relu6", "hard_tanh", "log_sigmoid", "celu",
    "tanh_shrink", "soft_shrink", "hard_shrink", "squareplus", "sparse_plus")
}

# The activation_<name>() function of `name`.
rk_activation_function <- function(name) {
  get(paste0("activation_", name), envir = asNamespace("rkeras"), mode = "function")
}

# If `f` is one of the activation_*() functions, its Keras name, else NULL.
rk_activation_name_of <- function(f) {
  if (!is.function(f)) return(NULL)
  for (nm in rk_activation_names()) {
    if (identical(f, rk_activation_function(nm), ignore.environment = FALSE)) return(nm)
  }
  NULL
}

# Validates an `activation` argument before anything is built: NULL (-> "linear"), a
# known name, one of the activation_*() functions (-> its name) or any R function (kept:
# the layer runs it through the engine's external-function path). Unknown strings give an
# rkeras_value_error listing the valid names.
rk_check_activation <- function(activation, arg = "activation", allow_null = TRUE) {
  if (is.null(activation)) {
    if (allow_null) return("linear")
    rk_abort(sprintf("`%s` must be an activation name or a function, got NULL", arg), "rkeras_value_error")
  }
  if (is.function(activation)) {
    nm <- rk_activation_name_of(activation)
    return(if (is.null(nm)) activation else nm)
  }
  if (!is.character(activation) || length(activation) != 1L || is.na(activation))
    rk_abort(sprintf("`%s` must be a single string or a function, got %s", arg, rk_arg_repr(activation)),
             "rkeras_type_error")
  if (!activation %in% rk_activation_names())
    rk_abort(sprintf("unknown activation \"%s\" for `%s`; valid names are: %s", activation, arg,
                     paste0("\"", rk_activation_names(), "\"", collapse = ", ")),
             "rkeras_value_error")
  activation
}

# A short description of a value for error messages: `"a"`, `-3`, `c(1, 2)`, `a list of length 2`.
rk_arg_repr <- function(x) {
  if (is.null(x)) return("NULL")
  if (is.function(x)) return("a function")
  if (is.list(x) && !is.object(x)) return(sprintf("a list of length %d", length(x)))
  if (is.object(x)) return(sprintf("an object of class %s", class(x)[1L]))
  if (length(x) > 6L) return(sprintf("a %s vector of length %d", typeof(x), length(x)))
  deparse1(if (is.null(dim(x))) x else as.vector(x))
}
