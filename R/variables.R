# Variables: the weights of layers. An "rkeras_variable" is an environment holding an engine
# tensor that engine graphs and optimizers share (same storage), so values assigned with
# set_weights() or updated by fit() are seen everywhere at once.

# New variable holding `value` (an rkeras_tensor, used as is: its storage becomes the variable's).
rk_new_variable <- function(value, name, path = name, trainable = TRUE) {
  v <- new.env(parent = emptyenv())
  v$id <- rk_next_id()
  v$name <- name
  v$path <- path
  v$tensor <- value
  v$shape <- as.integer(dim(value))
  v$dtype <- rk_tensor_dtype(value)
  v$trainable <- trainable
  v$created_trainable <- trainable
  class(v) <- "rkeras_variable"
  v
}

rk_is_variable <- function(x) inherits(x, "rkeras_variable")

# Copies `value` (R array or tensor) into the variable in place, after checking its shape.
rk_variable_assign <- function(v, value) {
  t <- rk_variable_value_tensor(v, value)
  rk_tensor_assign(v$tensor, t)
  invisible(v)
}

# `value` as a tensor of the variable's shape and dtype; a classed error naming the variable
# when the shape differs.
rk_variable_value_tensor <- function(v, value) {
  if (rk_is_variable(value)) value <- value$tensor
  shp <- if (is_rk_tensor(value)) as.integer(dim(value)) else rk_r_shape(value)
  if (!identical(shp, v$shape))
    rk_abort(sprintf("Variable %s has shape %s, but the value has shape %s", v$path,
                     rk_shape_tuple(v$shape), rk_shape_tuple(shp)), "rkeras_shape_error")
  if (is_rk_tensor(value)) {
    if (rk_tensor_dtype(value) != v$dtype) value <- rk_cast(value, v$dtype)
    return(value)
  }
  if (!(is.numeric(value) || is.logical(value)))
    rk_abort(sprintf("values for variable %s must be numeric, got %s", v$path, rk_obj_kind(value)),
             "rkeras_type_error")
  if (anyNA(value))
    rk_abort(sprintf("values for variable %s contain NA", v$path), "rkeras_value_error")
  rk_tensor(array(as.numeric(value), dim = if (length(v$shape)) v$shape else NULL), dtype = v$dtype)
}

# Shape of an R value as Keras sees it: dim(), or the length for a plain vector; a one-element
# vector counts as a scalar only where a scalar is expected (handled by the caller's shape).
rk_r_shape <- function(x) {
  d <- dim(x)
  if (!is.null(d)) return(as.integer(d))
  as.integer(length(x))
}

#' @export
as.array.rkeras_variable <- function(x, ...) {
  a <- as.array(x$tensor)
  if (is.null(dim(a)) && length(x$shape) == 1L) a <- array(a, dim = x$shape)
  a
}

#' @export
as.double.rkeras_variable <- function(x, ...) as.double(as.array(x$tensor))

#' @export
dim.rkeras_variable <- function(x) x$shape

#' @export
length.rkeras_variable <- function(x) as.integer(prod(x$shape))

#' @export
format.rkeras_variable <- function(x, ...) {
  vals <- tryCatch(as.double(as.array(x$tensor)), error = function(e) NULL)
  value <- if (is.null(vals)) "" else {
    shown <- trimws(formatC(utils::head(vals, 4L), digits = 4L, format = "g"))
    sprintf(", value=[%s%s]", paste(shown, collapse = " "), if (length(vals) > 4L) " ..." else "")
  }
  sprintf("<Variable path=%s, shape=%s, dtype=%s%s>", x$path, rk_shape_tuple(x$shape), x$dtype, value)
}

#' @export
print.rkeras_variable <- function(x, ...) {
  cat(format(x), "\n", sep = "")
  invisible(x)
}

#' @importFrom utils str
#' @export
str.rkeras_variable <- function(object, ...) {
  cat(format(object), "\n", sep = "")
  invisible(NULL)
}
