# Activation layers with settings (keras3's layer_activation_*()): LeakyReLU, PReLU (with
# a trainable slope), ELU, ReLU (with max_value, negative_slope, threshold) and Softmax.

#' Leaky version of a rectified linear unit activation layer
#'
#' `f(x) = negative_slope * x` for `x < 0`, `x` for `x >= 0`.
#'
#' @inheritParams layer_dense
#' @param negative_slope Non-negative number, the slope of the negative part (default 0.3).
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family activation layers
#' @family layers
#' @examples
#' layer <- layer_activation_leaky_relu(negative_slope = 0.1)
#' as.array(layer(matrix(c(-10, -1, 0, 2), nrow = 1)))
#' @export
layer_activation_leaky_relu <- function(object, negative_slope = 0.3, ...) {
  negative_slope <- rk_check_num_arg(negative_slope, "negative_slope", lower = 0)
  create_layer("LeakyReLU", object, list(negative_slope = negative_slope), ...,
               module = "keras.src.layers.activations.leaky_relu")
}

#' Parametric rectified linear unit activation layer
#'
#' `f(x) = alpha * x` for `x < 0`, `x` for `x >= 0`, where `alpha` is a trainable weight
#' with the shape of one input sample (axes listed in `shared_axes` share one value).
#'
#' @inheritParams layer_dense
#' @param alpha_initializer Initializer of the weights (default `"Zeros"`).
#' @param alpha_regularizer Regularizer of the weights, or `NULL`.
#' @param alpha_constraint Constraint of the weights, or `NULL`.
#' @param shared_axes The axes along which to share the learnable parameters (1-based,
#'   counting the batch axis as 1 as keras3 does: for an input of shape
#'   `(batch, height, width, channels)`, `shared_axes = c(2, 3)` gives one slope per
#'   channel). `NULL`: no sharing.
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family activation layers
#' @family layers
#' @examples
#' model <- keras_model_sequential(input_shape = 5) |>
#'   layer_dense(5) |>
#'   layer_activation_parametric_relu()
#' @export
layer_activation_parametric_relu <- function(object, alpha_initializer = "Zeros",
                                             alpha_regularizer = NULL, alpha_constraint = NULL,
                                             shared_axes = NULL, ...) {
  rk_check_weight_option_arg(alpha_initializer, "alpha_initializer", "initializer")
  rk_check_weight_option_arg(alpha_regularizer, "alpha_regularizer", "regularizer")
  rk_check_weight_option_arg(alpha_constraint, "alpha_constraint", "constraint")
  shared_axes <- rk_check_axis_arg(shared_axes, "shared_axes", allow_null = TRUE, several = TRUE)
  if (!is.null(shared_axes) && any(shared_axes == 0L))
    rk_abort("`shared_axes` cannot include the batch axis (axis 1)", "rkeras_value_error")
  config <- list(alpha_initializer = alpha_initializer, alpha_regularizer = alpha_regularizer,
                 alpha_constraint = alpha_constraint, shared_axes = shared_axes)
  create_layer("PReLU", object, config, ..., module = "keras.src.layers.activations.prelu")
}

#' Exponential linear unit (ELU) activation layer
#'
#' `f(x) = alpha * (exp(x) - 1)` for `x < 0`, `x` for `x >= 0`.
#'
#' @inheritParams layer_dense
#' @param alpha Scale of the negative part (default 1).
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family activation layers
#' @family layers
#' @examples
#' layer <- layer_activation_elu()
#' as.array(layer(matrix(c(-1, 0, 1), nrow = 1)))
#' @export
layer_activation_elu <- function(object, alpha = 1, ...) {
  alpha <- rk_check_num_arg(alpha, "alpha")
  create_layer("ELU", object, list(alpha = alpha), ..., module = "activations")
}

#' Rectified linear unit activation layer
#'
#' With default values, `max(x, 0)`. Otherwise `f(x) = max_value` for
#' `x >= max_value`, `x` for `threshold <= x < max_value`, and
#' `negative_slope * (x - threshold)` below the threshold.
#'
#' @inheritParams layer_dense
#' @param max_value Non-negative number, the largest output value; `NULL` for no cap.
#' @param negative_slope Non-negative number, the slope below the threshold.
#' @param threshold Number, the threshold below which values are damped.
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family activation layers
#' @family layers
#' @examples
#' layer <- layer_activation_relu(max_value = 6)
#' as.array(layer(matrix(c(-1, 3, 10), nrow = 1)))
#' @export
layer_activation_relu <- function(object, max_value = NULL, negative_slope = 0, threshold = 0, ...) {
  max_value <- rk_check_num_arg(max_value, "max_value", lower = 0, allow_null = TRUE)
  negative_slope <- rk_check_num_arg(negative_slope, "negative_slope", lower = 0)
  threshold <- rk_check_num_arg(threshold, "threshold")
  config <- list(max_value = max_value, negative_slope = negative_slope, threshold = threshold)
  create_layer("ReLU", object, config, ..., module = "keras.src.layers.activations.relu")
}

#' Softmax activation layer
#'
#' `exp(x) / sum(exp(x))` along `axis`.
#'
#' @inheritParams layer_dense
#' @param axis Axis (or axes) along which the softmax normalisation is applied (1-based,
#'   counting the batch axis as 1; `-1`, the default, is the last axis).
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family activation layers
#' @family layers
#' @examples
#' layer <- layer_activation_softmax()
#' as.array(layer(matrix(c(1, 2, 3, 1, 1, 1), nrow = 2, byrow = TRUE)))
#' @export
layer_activation_softmax <- function(object, axis = -1L, ...) {
  axis <- rk_check_axis_arg(axis, "axis", several = TRUE)
  create_layer("Softmax", object, list(axis = axis), ..., module = "activations")
}
