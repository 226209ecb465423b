# Noise and regularisation layers (keras3's layer_gaussian_noise(), layer_gaussian_dropout(),
# layer_alpha_dropout(), layer_activity_regularization()). The noise layers act only in
# training (fit(), or a call with training = TRUE); elsewhere they return their input.

#' Apply additive zero-centered Gaussian noise
#'
#' Adds noise drawn from `N(0, stddev^2)` to the input during training; a regularisation
#' layer (useful against overfitting, or as data augmentation for real-valued inputs).
#' Inactive outside training.
#'
#' @inheritParams layer_dense
#' @param stddev Non-negative number, the standard deviation of the noise.
#' @param seed Integer seed of the layer's noise stream, or `NULL` (drawn from R's RNG, so
#'   [set.seed()] makes runs reproducible).
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family noise layers
#' @family layers
#' @examples
#' model <- keras_model_sequential(input_shape = 4) |>
#'   layer_gaussian_noise(stddev = 0.1) |>
#'   layer_dense(1)
#' @export
layer_gaussian_noise <- function(object, stddev, seed = NULL, ...) {
  rk_require_arg(missing(stddev), "stddev", "a non-negative number")
  stddev <- rk_check_num_arg(stddev, "stddev", lower = 0)
  seed <- rk_check_seed_arg(seed)
  create_layer("GaussianNoise", object, list(stddev = stddev, seed = seed), ...,
               module = "regularization")
}

#' Apply multiplicative 1-centered Gaussian noise
#'
#' Multiplies the input during training by noise drawn from
#' `N(1, rate / (1 - rate))`. Inactive outside training.
#'
#' @inheritParams layer_gaussian_noise
#' @param rate Number in `[0, 1]`, the drop probability (as for [layer_dropout()]).
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family noise layers
#' @family layers
#' @examples
#' model <- keras_model_sequential(input_shape = 4) |>
#'   layer_gaussian_dropout(rate = 0.2) |>
#'   layer_dense(1)
#' @export
layer_gaussian_dropout <- function(object, rate, seed = NULL, ...) {
  rate <- rk_check_rate_arg(rate)
  seed <- rk_check_seed_arg(seed)
  create_layer("GaussianDropout", object, list(rate = rate, seed = seed), ...,
               module = "regularization")
}

#' Applies Alpha Dropout to the input
#'
#' Dropout that keeps the mean and variance of its inputs, for self-normalising networks
#' (SELU activation, `"lecun_normal"` initialisation): dropped units are set to the SELU
#' saturation value `-alpha * scale` and the result is scaled and shifted back. Inactive
#' outside training.
#'
#' @inheritParams layer_dropout
#' @param rate Number in `[0, 1)`, the drop probability.
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family noise layers
#' @family layers
#' @examples
#' model <- keras_model_sequential(input_shape = 4) |>
#'   layer_dense(8, activation = "selu", kernel_initializer = "lecun_normal") |>
#'   layer_alpha_dropout(rate = 0.1) |>
#'   layer_dense(1)
#' @export
layer_alpha_dropout <- function(object, rate, noise_shape = NULL, seed = NULL, ...) {
  rate <- rk_check_rate_arg(rate, upper_open = TRUE)
  noise_shape <- rk_check_shape_arg(noise_shape, "noise_shape", allow_null = TRUE)
  seed <- rk_check_seed_arg(seed)
  create_layer("AlphaDropout", object, list(rate = rate, noise_shape = noise_shape, seed = seed),
               ..., module = "regularization")
}

#' Layer that applies an update to the cost function based on input activity
#'
#' Returns its input unchanged and, during training, adds
#' the activity penalty `l1 * sum(abs(x)) + l2 * sum(x^2)` to the loss.
#'
#' @inheritParams layer_dense
#' @param l1 Non-negative number, the L1 regularisation factor.
#' @param l2 Non-negative number, the L2 regularisation factor.
#' @return A layer instance, the Sequential model `object` (invisibly), or the output
#'   tensor, depending on `object`.
#' @family noise layers
#' @family layers
#' @examples
#' model <- keras_model_sequential(input_shape = 4) |>
#'   layer_dense(8) |>
#'   layer_activity_regularization(l1 = 0.01) |>
#'   layer_dense(1)
#' @export
layer_activity_regularization <- function(object, l1 = 0, l2 = 0, ...) {
  l1 <- rk_check_num_arg(l1, "l1", lower = 0)
  l2 <- rk_check_num_arg(l2, "l2", lower = 0)
  create_layer("ActivityRegularization", object, list(l1 = l1, l2 = l2), ...,
               module = "regularization")
}
