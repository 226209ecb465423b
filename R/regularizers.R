# Weight regularizers (keras3's regularizer_*()), with the Keras 3 penalties.
#
# A regularizer is a callable object, `reg(x)` -> the penalty as a rank-0 rkeras_tensor,
# of class c(<Keras Python class path>, "keras.src.regularizers.regularizers.Regularizer",
# "rkeras_regularizer", "function") (see rk_obj_callable() in initializers.R). Layers
# resolve `*_regularizer` arguments with rk_get_regularizer(); training hands the engine
# the L1/L2 factors from rk_regularizer_spec() (the engine adds the penalties itself).

rk_new_regularizer <- function(class_name, config) {
  spec <- list(module = "keras.regularizers", class_name = class_name, config = config)
  classes <- c(sprintf("keras.src.regularizers.regularizers.%s", class_name),
               "keras.src.regularizers.regularizers.Regularizer", "rkeras_regularizer")
  rk_obj_callable(function(self, x) rk_regularizer_penalty(self, x), spec, classes)
}

# Keras's validate_float_arg(): a finite, non-negative number.
rk_reg_factor <- function(x, arg) {
  if (!is.numeric(x) || length(x) != 1L || is.na(x) || !is.finite(x) || x < 0)
    rk_abort(sprintf("invalid value for argument `%s`: expected a non-negative number, got %s", arg,
                     rk_obj_deparse(x)), "rkeras_value_error")
  as.numeric(x)
}

#' A regularizer that applies an L1 regularization penalty
#'
#' The penalty is `l1 * sum(abs(x))`. Layers also accept the strings `"l1"` and `"L1"`
#' (with `l1 = 0.01`).
#'
#' A regularizer is a function: call it on a weight (an R array or an `rkeras_tensor`)
#' to compute its penalty, or pass it to a layer's `kernel_regularizer`,
#' `bias_regularizer`, ... argument; the penalties of a model's weights are added to the
#' loss during training.
#'
#' @param l1 The L1 regularization factor (a non-negative number).
#' @return A regularizer: a function of a weight `x` returning the penalty as a scalar
#'   `rkeras_tensor` (of `x`'s dtype; R doubles are float64).
#' @family regularizers
#' @examples
#' reg <- regularizer_l1(0.1)
#' as.array(reg(matrix(c(1, -2, 3, -4), 2)))  # 0.1 * 10
#' @export
regularizer_l1 <- function(l1 = 0.01) {
  if (is.null(l1)) l1 <- 0.01
  rk_new_regularizer("L1", list(l1 = rk_reg_factor(l1, "l1")))
}

#' A regularizer that applies an L2 regularization penalty
#'
#' The penalty is `l2 * sum(x^2)`. Layers also accept the strings `"l2"` and `"L2"`
#' (with `l2 = 0.01`).
#'
#' @param l2 The L2 regularization factor (a non-negative number).
#' @inherit regularizer_l1 return
#' @family regularizers
#' @examples
#' reg <- regularizer_l2(0.1)
#' as.array(reg(matrix(c(1, -2, 3, -4), 2)))  # 0.1 * 30
#' @export
regularizer_l2 <- function(l2 = 0.01) {
  if (is.null(l2)) l2 <- 0.01
  rk_new_regularizer("L2", list(l2 = rk_reg_factor(l2, "l2")))
}

#' A regularizer that applies both L1 and L2 regularization penalties
#'
#' The penalty is `l1 * sum(abs(x)) + l2 * sum(x^2)`. Layers also accept the strings
#' `"l1l2"` and `"L1L2"` (with both factors 0, as Keras 3).
#'
#' @param l1 The L1 regularization factor (a non-negative number).
#' @param l2 The L2 regularization factor (a non-negative number).
#' @inherit regularizer_l1 return
#' @family regularizers
#' @examples
#' reg <- regularizer_l1_l2(l1 = 0.1, l2 = 0.01)
#' as.array(reg(c(1, -2, 3)))  # 0.1 * 6 + 0.01 * 14
#' @export
regularizer_l1_l2 <- function(l1 = 0, l2 = 0) {
  if (is.null(l1)) l1 <- 0
  if (is.null(l2)) l2 <- 0
  rk_new_regularizer("L1L2", list(l1 = rk_reg_factor(l1, "l1"), l2 = rk_reg_factor(l2, "l2")))
}

#' Regularizer that encourages input vectors to be orthogonal to each other
#'
#' It applies to the rows of a 2D weight (`mode = "rows"`) or to its columns
#' (`mode = "columns"`): the vectors are L2-normalised and the penalty is
#' `factor * 0.5 * sum(abs(p)) / (k * (k - 1) / 2)`, where `p` holds the dot products of
#' all pairs of distinct vectors and `k` is their number. When applied to a dense kernel
#' of shape `(input_dim, units)`, rows mode seeks to make the feature vectors orthogonal
#' to each other.
#'
#' Training with this regularizer is not supported yet by the rkeras engine (an error of
#' class `rkeras_unsupported_error` when the model is trained); calling it on a weight
#' works.
#'
#' @param factor The regularization factor (a non-negative number).
#' @param mode `"rows"` or `"columns"`.
#' @inherit regularizer_l1 return
#' @family regularizers
#' @examples
#' reg <- regularizer_orthogonal(factor = 0.01)
#' as.array(reg(diag(3)))                    # orthogonal rows: 0
#' as.array(reg(matrix(c(1, 1, 1, 1), 2)))   # parallel rows: 0.01 * 0.5 * 2 / 1
#' @export
regularizer_orthogonal <- function(factor = 0.01, mode = "rows") {
  factor <- rk_reg_factor(factor, "factor")
  mode <- rk_obj_choice(mode, "mode", c("rows", "columns"))
  rk_new_regularizer("OrthogonalRegularizer", list(factor = factor, mode = mode))
}

rk_regularizer_constructors <- list(
  L1 = regularizer_l1, L2 = regularizer_l2, L1L2 = regularizer_l1_l2,
  OrthogonalRegularizer = regularizer_orthogonal
)

# Keras's identifier table: class names and their snake_case forms.
rk_regularizer_names <- c(
  L1 = "L1", l1 = "L1", L2 = "L2", l2 = "L2", L1L2 = "L1L2", l1l2 = "L1L2",
  OrthogonalRegularizer = "OrthogonalRegularizer", orthogonal_regularizer = "OrthogonalRegularizer"
)

rk_unknown_regularizer <- function(name) {
  rk_abort(sprintf("unknown regularizer \"%s\"; expected one of %s (names are case-sensitive)", name,
                   paste0("\"", names(rk_regularizer_names), "\"", collapse = ", ")),
           "rkeras_value_error")
}

rk_regularizer_from_config <- function(class_name, config = list()) {
  if (!is.list(config)) rk_abort("a regularizer config must be a list", "rkeras_type_error")
  ctor <- rk_regularizer_constructors[[class_name]]
  if (is.null(ctor)) rk_unknown_regularizer(class_name)
  extra <- setdiff(names(config), names(formals(ctor)))
  if (length(extra))
    rk_abort(sprintf("unknown config field(s) %s for regularizer %s", paste0("`", extra, "`", collapse = ", "),
                     class_name), "rkeras_value_error")
  do.call(ctor, config)
}

# NULL -> NULL; a name, a regularizer object, a Keras config list or an R function of
# the weight (returned as it is) -> a regularizer.
rk_get_regularizer <- function(x) {
  if (is.null(x)) return(NULL)
  if (inherits(x, "rkeras_regularizer")) return(x)
  if (is.character(x)) {
    if (length(x) != 1L || is.na(x))
      rk_abort(sprintf("a regularizer name must be a single string, got %s", rk_obj_deparse(x)),
               "rkeras_value_error")
    class_name <- rk_regularizer_names[x]
    if (is.na(class_name)) rk_unknown_regularizer(x)
    return(rk_regularizer_constructors[[class_name]]())
  }
  if (rk_obj_is_config(x)) {
    class_name <- rk_regularizer_names[x$class_name]
    if (is.na(class_name)) rk_unknown_regularizer(x$class_name)
    return(rk_regularizer_from_config(unname(class_name), if (is.null(x$config)) list() else x$config))
  }
  if (is.function(x) && !inherits(x, c("rkeras_initializer", "rkeras_constraint"))) return(x)
  rk_abort(sprintf("could not interpret regularizer identifier: expected a name such as \"l2\", a regularizer object or a function of the weight, got %s",
                   rk_obj_kind(x)), "rkeras_type_error")
}

# The L1/L2 factors the engine's trainer applies: list(l1, l2). Other regularizers (the
# orthogonal one, R functions) cannot run inside the engine's training step yet.
rk_regularizer_spec <- function(r) {
  r <- rk_get_regularizer(r)
  if (is.null(r)) return(NULL)
  if (!inherits(r, "rkeras_regularizer"))
    rk_abort("training with a regularizer written as an R function is not supported yet; use regularizer_l1(), regularizer_l2() or regularizer_l1_l2()",
             "rkeras_unsupported_error")
  spec <- rk_obj_spec(r)
  cfg <- spec$config
  switch(spec$class_name,
    L1 = list(l1 = cfg$l1, l2 = 0),
    L2 = list(l1 = 0, l2 = cfg$l2),
    L1L2 = list(l1 = cfg$l1, l2 = cfg$l2),
    rk_abort(sprintf("training with regularizer %s is not supported yet by the rkeras engine; use regularizer_l1(), regularizer_l2() or regularizer_l1_l2()",
                     spec$class_name), "rkeras_unsupported_error")
  )
}

rk_regularizer_input <- function(x) {
  if (is_rk_tensor(x)) {
    if (!rk_tensor_dtype(x) %in% c("float32", "float64")) x <- rk_cast(x, config_floatx())
    return(x)
  }
  if (!(is.numeric(x) || is.logical(x)) || is.object(x))
    rk_abort(sprintf("a regularizer must be called on a numeric array or an rkeras_tensor, not %s", rk_obj_kind(x)),
             "rkeras_type_error")
  if (is.double(x)) rk_tensor_from_r(x, NULL) else rk_tensor_from_r(x, config_floatx())
}

rk_regularizer_penalty <- function(reg, x) {
  x <- rk_regularizer_input(x)
  spec <- rk_obj_spec(reg)
  cfg <- spec$config
  switch(spec$class_name,
    L1 = rk_sum(rk_abs(x)) * cfg$l1,
    L2 = rk_sum(rk_square(x)) * cfg$l2,
    L1L2 = {
      out <- rk_scalar(0, rk_tensor_dtype(x))
      if (cfg$l1 != 0) out <- out + rk_sum(rk_abs(x)) * cfg$l1
      if (cfg$l2 != 0) out <- out + rk_sum(rk_square(x)) * cfg$l2
      out
    },
    OrthogonalRegularizer = rk_orthogonal_penalty(x, cfg$factor, cfg$mode)
  )
}

rk_orthogonal_penalty <- function(x, factor, mode) {
  shape <- rk_tensor_shape(x)
  if (length(shape) != 2L)
    rk_abort(sprintf("inputs to the orthogonal regularizer must have rank 2, got shape (%s)",
                     paste(shape, collapse = ", ")), "rkeras_shape_error")
  axis <- if (mode == "rows") 2L else 1L
  # Keras's L2 normalisation: x * rsqrt(max(sum(x^2), epsilon^2)).
  eps <- config_epsilon()
  sq <- rk_sum(rk_square(x), axis = axis, keepdims = TRUE)
  v <- x / rk_sqrt(rk_maximum(sq, eps * eps))
  product <- if (mode == "rows") rk_matmul(v, rk_transpose(v)) else rk_matmul(rk_transpose(v), v)
  size <- if (mode == "rows") shape[1L] else shape[2L]
  off_diagonal <- rk_tensor_from_r(1 - diag(size), rk_tensor_dtype(x))
  num_pairs <- size * (size - 1) / 2
  rk_sum(rk_abs(product * off_diagonal)) * (factor * 0.5 / num_pairs)
}

#' @export
print.rkeras_regularizer <- function(x, ...) rk_obj_print(x, "regularizer")

#' @export
`$.rkeras_regularizer` <- function(x, name) rk_obj_dollar(x, name, rk_regularizer_from_config)

# get_config() (the generic lives in model-config.R): the Keras config, with attribute
# `__class__` as keras3 returns it.
#' @export
get_config.rkeras_regularizer <- function(object, ...) rk_obj_get_config(object)
