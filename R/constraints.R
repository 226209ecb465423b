# Weight constraints (keras3's constraint_*()), with the Keras 3 formulas.
#
# A constraint is a callable object, `con(w)` -> the constrained weight as an
# rkeras_tensor, of class c(<Keras Python class path>,
# "keras.src.constraints.constraints.Constraint", "rkeras_constraint", "function") (see
# rk_obj_callable() in initializers.R). Axes are 1-based as in keras3 (`axis = 1` is
# the first dimension, negative axes count from the end); the Keras config, like Keras's
# JSON, holds them 0-based. Layers resolve `*_constraint` arguments with
# rk_get_constraint(); training hands the engine rk_constraint_spec(), which the engine
# applies after every optimizer step.

rk_new_constraint <- function(class_name, config, axis = NULL) {
  spec <- list(module = "keras.constraints", class_name = class_name, config = config, axis = axis)
  classes <- c(sprintf("keras.src.constraints.constraints.%s", class_name),
               "keras.src.constraints.constraints.Constraint", "rkeras_constraint")
  rk_obj_callable(function(self, w) rk_constraint_apply(self, w), spec, classes)
}

# keras3's 1-based axes (one or several, negative from the end) -> validated integers.
rk_con_axis <- function(axis) {
  if (!is.numeric(axis) || length(axis) < 1L || anyNA(axis) || any(axis != trunc(axis)) || any(axis == 0))
    rk_abort(sprintf("`axis` must be one or more non-zero whole numbers (1-based; negative counts from the end), got %s",
                     rk_obj_deparse(axis)), "rkeras_value_error")
  as.integer(axis)
}

# 1-based (or negative) axes -> Keras's 0-based (or negative) axes.
rk_axis_to_keras <- function(axis) ifelse(axis > 0L, axis - 1L, axis)

# Keras 0-based axes (from a config) -> keras3's 1-based ones.
rk_axis_from_keras <- function(axis) {
  if (!is.numeric(axis) || length(axis) < 1L || anyNA(axis) || any(axis != trunc(axis)))
    rk_abort(sprintf("a constraint config's `axis` must be whole numbers, got %s", rk_obj_deparse(axis)),
             "rkeras_value_error")
  axis <- as.integer(axis)
  ifelse(axis >= 0L, axis + 1L, axis)
}

#' MaxNorm weight constraint
#'
#' Constrains the weights incident to each hidden unit to have a norm less than or equal
#' to a desired value: `w * clip(norm, 0, max_value) / (epsilon + norm)`, with the L2
#' norms taken along `axis` and `epsilon` = [config_epsilon()].
#'
#' A constraint is a function: call it on a weight (an R array or an `rkeras_tensor`) to
#' get the constrained weight, or pass it to a layer's `kernel_constraint` or
#' `bias_constraint` argument; it is then applied after every optimizer step. A plain R
#' function of the weight may be passed to layers as well.
#'
#' @param max_value The maximum norm for the incoming weights.
#' @param axis The axis (or axes) along which to compute the norms, 1-based as in keras3.
#'   For a dense kernel of shape `(input_dim, units)`, `axis = 1` constrains each weight
#'   vector of length `input_dim`; for a 2D convolution kernel
#'   `(rows, cols, input_depth, output_depth)`, `axis = c(1, 2, 3)` constrains each filter.
#' @return A constraint: a function of a weight `w` returning the constrained weight as
#'   an `rkeras_tensor` (of `w`'s dtype; R doubles are float64).
#' @family constraints
#' @examples
#' con <- constraint_maxnorm(max_value = 1)
#' w <- matrix(c(3, 4, 0.3, 0.4), 2)  # column norms 5 and 0.5
#' as.array(con(w))                    # first column rescaled to norm 1
#' @export
constraint_maxnorm <- function(max_value = 2L, axis = 1L) {
  max_value <- rk_obj_number(max_value, "max_value", min = 0)
  axis <- rk_con_axis(axis)
  rk_new_constraint("MaxNorm", list(max_value = max_value, axis = rk_axis_to_keras(axis)), axis)
}

#' MinMaxNorm weight constraint
#'
#' Constrains the weights incident to each hidden unit to have a norm between a lower
#' and an upper bound: the weights are rescaled to the norm
#' `rate * clip(norm, min_value, max_value) + (1 - rate) * norm`.
#'
#' @param min_value The minimum norm for the incoming weights.
#' @param max_value The maximum norm for the incoming weights.
#' @param rate The rate of enforcement: `rate = 1` enforces the constraint strictly, a
#'   smaller rate moves the weights towards the interval at each step.
#' @inheritParams constraint_maxnorm
#' @inherit constraint_maxnorm return
#' @family constraints
#' @examples
#' con <- constraint_minmaxnorm(min_value = 1, max_value = 2)
#' w <- matrix(c(3, 4, 0.3, 0.4), 2)  # column norms 5 and 0.5
#' as.array(con(w))                    # column norms become 2 and 1
#' @export
constraint_minmaxnorm <- function(min_value = 0, max_value = 1, rate = 1, axis = 1L) {
  min_value <- rk_obj_number(min_value, "min_value", min = 0)
  max_value <- rk_obj_number(max_value, "max_value", min = 0)
  if (max_value < min_value)
    rk_abort(sprintf("`max_value` (%s) must not be smaller than `min_value` (%s)", format(max_value), format(min_value)),
             "rkeras_value_error")
  rate <- rk_obj_number(rate, "rate")
  axis <- rk_con_axis(axis)
  rk_new_constraint("MinMaxNorm", list(min_value = min_value, max_value = max_value, rate = rate,
                                       axis = rk_axis_to_keras(axis)), axis)
}

#' Constrains the weights to be non-negative
#'
#' Negative weights are set to zero: `pmax(w, 0)`.
#'
#' @inherit constraint_maxnorm return
#' @family constraints
#' @examples
#' con <- constraint_nonneg()
#' as.array(con(c(-1, 0.5, 2)))
#' @export
constraint_nonneg <- function() rk_new_constraint("NonNeg", structure(list(), names = character()))

#' Constrains the weights incident to each hidden unit to have unit norm
#'
#' The weights are divided by `epsilon + norm`, with the L2 norms taken along `axis` and
#' `epsilon` = [config_epsilon()].
#'
#' @inheritParams constraint_maxnorm
#' @inherit constraint_maxnorm return
#' @family constraints
#' @examples
#' con <- constraint_unitnorm()
#' w <- matrix(c(3, 4, 0.3, 0.4), 2)
#' as.array(con(w))  # both columns have norm 1
#' @export
constraint_unitnorm <- function(axis = 1L) {
  axis <- rk_con_axis(axis)
  rk_new_constraint("UnitNorm", list(axis = rk_axis_to_keras(axis)), axis)
}

rk_constraint_constructors <- list(
  MaxNorm = constraint_maxnorm, MinMaxNorm = constraint_minmaxnorm,
  NonNeg = constraint_nonneg, UnitNorm = constraint_unitnorm
)

# Keras's identifier table: class names and their snake_case forms.
rk_constraint_names <- c(
  MaxNorm = "MaxNorm", max_norm = "MaxNorm", MinMaxNorm = "MinMaxNorm", min_max_norm = "MinMaxNorm",
  NonNeg = "NonNeg", non_neg = "NonNeg", UnitNorm = "UnitNorm", unit_norm = "UnitNorm"
)

rk_constraint_kinds <- c(MaxNorm = "max_norm", MinMaxNorm = "min_max_norm", NonNeg = "non_neg",
                         UnitNorm = "unit_norm")

rk_unknown_constraint <- function(name) {
  rk_abort(sprintf("unknown constraint \"%s\"; expected one of %s (names are case-sensitive)", name,
                   paste0("\"", names(rk_constraint_names), "\"", collapse = ", ")),
           "rkeras_value_error")
}

# From a Keras config (0-based axes, as Keras writes it).
rk_constraint_from_config <- function(class_name, config = list()) {
  if (!is.list(config)) rk_abort("a constraint config must be a list", "rkeras_type_error")
  ctor <- rk_constraint_constructors[[class_name]]
  if (is.null(ctor)) rk_unknown_constraint(class_name)
  extra <- setdiff(names(config), names(formals(ctor)))
  if (length(extra))
    rk_abort(sprintf("unknown config field(s) %s for constraint %s", paste0("`", extra, "`", collapse = ", "),
                     class_name), "rkeras_value_error")
  if (!is.null(config$axis)) config$axis <- rk_axis_from_keras(unlist(config$axis))
  do.call(ctor, config)
}

# NULL -> NULL; a name, a constraint object, a Keras config list or an R function of the
# weight (returned as it is) -> a constraint.
rk_get_constraint <- function(x) {
  if (is.null(x)) return(NULL)
  if (inherits(x, "rkeras_constraint")) return(x)
  if (is.character(x)) {
    if (length(x) != 1L || is.na(x))
      rk_abort(sprintf("a constraint name must be a single string, got %s", rk_obj_deparse(x)),
               "rkeras_value_error")
    class_name <- rk_constraint_names[x]
    if (is.na(class_name)) rk_unknown_constraint(x)
    return(rk_constraint_constructors[[class_name]]())
  }
  if (rk_obj_is_config(x)) {
    class_name <- rk_constraint_names[x$class_name]
    if (is.na(class_name)) rk_unknown_constraint(x$class_name)
    return(rk_constraint_from_config(unname(class_name), if (is.null(x$config)) list() else x$config))
  }
  if (is.function(x) && !inherits(x, c("rkeras_initializer", "rkeras_regularizer"))) return(x)
  rk_abort(sprintf("could not interpret constraint identifier: expected a name such as \"max_norm\", a constraint object or a function of the weight, got %s",
                   rk_obj_kind(x)), "rkeras_type_error")
}

# What the engine applies after each optimizer step: list(kind, attrs) with kind one of
# "max_norm", "min_max_norm", "non_neg", "unit_norm" and attrs max_value, min_value, rate,
# axis (0-based, negative from the end, as Keras); an R function gives
# list(kind = "r_function", attrs = list(), fn = <the function>), which the R side applies.
rk_constraint_spec <- function(c) {
  c <- rk_get_constraint(c)
  if (is.null(c)) return(NULL)
  if (!inherits(c, "rkeras_constraint")) return(list(kind = "r_function", attrs = list(), fn = c))
  spec <- rk_obj_spec(c)
  cfg <- spec$config
  attrs <- switch(spec$class_name,
    MaxNorm = list(max_value = cfg$max_value, axis = cfg$axis),
    MinMaxNorm = list(min_value = cfg$min_value, max_value = cfg$max_value, rate = cfg$rate, axis = cfg$axis),
    NonNeg = list(),
    UnitNorm = list(axis = cfg$axis)
  )
  list(kind = rk_constraint_kinds[[spec$class_name]], attrs = attrs)
}

rk_constraint_input <- function(w) {
  if (is_rk_tensor(w)) {
    if (!rk_tensor_dtype(w) %in% c("float32", "float64")) w <- rk_cast(w, config_floatx())
    return(w)
  }
  if (!(is.numeric(w) || is.logical(w)) || is.object(w))
    rk_abort(sprintf("a constraint must be called on a numeric array or an rkeras_tensor, not %s", rk_obj_kind(w)),
             "rkeras_type_error")
  if (is.double(w)) rk_tensor_from_r(w, NULL) else rk_tensor_from_r(w, config_floatx())
}

rk_constraint_apply <- function(con, w) {
  w <- rk_constraint_input(w)
  spec <- rk_obj_spec(con)
  cfg <- spec$config
  if (spec$class_name == "NonNeg") return(rk_maximum(w, 0))
  eps <- config_epsilon()
  norms <- rk_sqrt(rk_sum(rk_square(w), axis = spec$axis, keepdims = TRUE))
  switch(spec$class_name,
    MaxNorm = w * (rk_clip(norms, 0, cfg$max_value) / (norms + eps)),
    MinMaxNorm = {
      desired <- rk_clip(norms, cfg$min_value, cfg$max_value) * cfg$rate + norms * (1 - cfg$rate)
      w * (desired / (norms + eps))
    },
    UnitNorm = w / (norms + eps)
  )
}

#' @export
print.rkeras_constraint <- function(x, ...) rk_obj_print(x, "constraint")

#' @export
`$.rkeras_constraint` <- function(x, name) rk_obj_dollar(x, name, rk_constraint_from_config)

# get_config() (the generic lives in model-config.R): the Keras config, with attribute
# `__class__` as keras3 returns it.
#' @export
get_config.rkeras_constraint <- function(object, ...) rk_obj_get_config(object)
