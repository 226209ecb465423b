# Merging layers (keras3's layer_add(), layer_concatenate(), layer_dot(), ...). As in
# keras3 they take `inputs` first: a list of tensors (or tensors given in `...`); with no
# inputs they return the layer instance, otherwise the merged output tensor.

# create_layer() treats `inputs` (a tensor or a list of them) plus the unnamed arguments in
# `...` as the tensors to merge, and the named ones as layer arguments; with no tensors it
# returns the layer instance.
rk_merge_layer <- function(class_name, inputs, config, ...) {
  create_layer(class_name, inputs, config, ..., module = "merging")
}

#' Merging layers: add, subtract, multiply, average, maximum, minimum
#'
#' Each takes a list of tensors of the same shape (shapes that broadcast, e.g. a missing
#' axis of size 1, are accepted as in Keras) and returns one tensor of that shape:
#' their element-wise sum (`layer_add()`), difference (`layer_subtract()`, exactly two
#' inputs), product (`layer_multiply()`), mean (`layer_average()`), maximum
#' (`layer_maximum()`) or minimum (`layer_minimum()`).
#'
#' @param inputs A list of input tensors (symbolic tensors from [keras_input()] or concrete
#'   ones), or missing to get the layer itself (call it later on a list of tensors).
#' @param ... More input tensors (unnamed) and the standard layer arguments (named: `name`,
#'   `dtype`, `trainable`).
#' @return The merged tensor when inputs are given, else the layer instance.
#' @family layers
#' @family merging layers
#' @examples
#' a <- keras_input(shape = 4)
#' b <- keras_input(shape = 4)
#' out <- layer_add(list(a, b))
#' model <- keras_model(list(a, b), out)
#'
#' layer <- layer_maximum()
#' as.array(layer(list(matrix(c(1, 5), 1), matrix(c(3, 2), 1))))
#' @export
layer_add <- function(inputs, ...) {
  rk_merge_layer("Add", if (missing(inputs)) NULL else inputs, list(), ...)
}

#' @rdname layer_add
#' @export
layer_subtract <- function(inputs, ...) {
  rk_merge_layer("Subtract", if (missing(inputs)) NULL else inputs, list(), ...)
}

#' @rdname layer_add
#' @export
layer_multiply <- function(inputs, ...) {
  rk_merge_layer("Multiply", if (missing(inputs)) NULL else inputs, list(), ...)
}

#' @rdname layer_add
#' @export
layer_average <- function(inputs, ...) {
  rk_merge_layer("Average", if (missing(inputs)) NULL else inputs, list(), ...)
}

#' @rdname layer_add
#' @export
layer_maximum <- function(inputs, ...) {
  rk_merge_layer("Maximum", if (missing(inputs)) NULL else inputs, list(), ...)
}

#' @rdname layer_add
#' @export
layer_minimum <- function(inputs, ...) {
  rk_merge_layer("Minimum", if (missing(inputs)) NULL else inputs, list(), ...)
}

#' Concatenates a list of inputs
#'
#' Joins tensors that have the same shape except along `axis`.
#'
#' @inheritParams layer_add
#' @param axis Axis along which to concatenate (1-based, counting the batch axis as 1;
#'   `-1`, the default, is the last axis).
#' @return The concatenated tensor when inputs are given, else the layer instance.
#' @family layers
#' @family merging layers
#' @examples
#' a <- keras_input(shape = 3)
#' b <- keras_input(shape = 5)
#' out <- layer_concatenate(list(a, b))   # shape (NA, 8)
#' model <- keras_model(list(a, b), out)
#' @export
layer_concatenate <- function(inputs, ..., axis = -1L) {
  axis <- rk_check_axis_arg(axis, "axis")
  rk_merge_layer("Concatenate", if (missing(inputs)) NULL else inputs, list(axis = axis), ...)
}

#' Computes a dot product between samples of two tensors
#'
#' For inputs `a` of shape `(batch, n)` and `b` of shape `(batch, n)` and `axes = 2`, the
#' output has shape `(batch, 1)` and holds `sum(a[i, ] * b[i, ])`. For 3-D inputs this is a
#' batched matrix product contracting the given axes. With `normalize = TRUE` both inputs
#' are first L2-normalised along their axes, so the result is the cosine similarity.
#'
#' @inheritParams layer_add
#' @param axes Integer or vector of two integers: the axis of each input to contract
#'   (1-based, counting the batch axis as 1; negative counts from the end).
#' @param normalize Whether to L2-normalise the samples along the dot-product axes first.
#' @return The output tensor when inputs are given, else the layer instance.
#' @family layers
#' @family merging layers
#' @examples
#' a <- keras_input(shape = 3)
#' b <- keras_input(shape = 3)
#' cosine <- layer_dot(list(a, b), axes = 2, normalize = TRUE)
#' model <- keras_model(list(a, b), cosine)
#' @export
layer_dot <- function(inputs, ..., axes, normalize = FALSE) {
  rk_require_arg(missing(axes), "axes", "an axis or a pair of axes")
  axes <- rk_check_axis_arg(axes, "axes", several = TRUE)
  if (length(axes) > 2L)
    rk_abort(sprintf("`axes` must be one axis or a pair of axes, got %d values", length(axes)),
             "rkeras_value_error")
  normalize <- rk_check_flag_arg(normalize, "normalize")
  rk_merge_layer("Dot", if (missing(inputs)) NULL else inputs,
                 list(axes = axes, normalize = normalize), ...)
}
