# The R tensor type: an external pointer to an engine tensor (class "rkeras_tensor"),
# conversion from and to R arrays, printing, arithmetic via group generics, and autograd.

#' Create an engine tensor from an R array
#'
#' Converts an R vector or array into a tensor of the rkeras engine. The element
#' at R index `[i, j, k]` is the tensor element at the same (1-based) position and
#' the tensor's shape equals `dim(x)`; `as.array()` converts back exactly.
#'
#' Types: doubles become `float64` tensors, integers `int32`, logicals `bool`,
#' unless `dtype` asks for another type (e.g. `"float32"`). A vector of length one
#' without `dim` becomes a rank-0 (scalar) tensor, any other vector a rank-1 tensor.
#' `NA` is not allowed (an error of class `rkeras_value_error`); `NaN` and `Inf`
#' are kept. Non-numeric input gives an error of class `rkeras_type_error`.
#'
#' Tensors support the arithmetic, comparison and logical operators, `exp()`,
#' `log()`, `sqrt()`, `abs()`, `sum()`, `max()`, `mean()`, ... with tensors or plain
#' R numbers on either side. A plain R number combined with a floating tensor takes
#' the tensor's dtype.
#'
#' @param x A numeric, integer or logical vector or array, or an `rkeras_tensor`.
#' @param dtype `NULL` (the natural type of `x`) or one of `"float32"`, `"float64"`,
#'   `"int32"`, `"bool"`.
#' @param requires_grad If `TRUE`, the tensor is a leaf whose gradient [rk_backward()]
#'   computes (floating dtypes only). For a tensor `x` this returns a new leaf sharing
#'   `x`'s values but not its history.
#' @return An object of class `rkeras_tensor`.
#' @seealso [rk_backward()], [rk_grad()], [with_no_grad()]
#' @examples
#' x <- rk_tensor(matrix(1:6, nrow = 2), dtype = "float32")
#' x
#' dim(x)
#' as.array(x * 2 + 1)
#'
#' w <- rk_tensor(c(1, 2, 3), requires_grad = TRUE)
#' loss <- sum(w^2)
#' rk_backward(loss)
#' as.array(rk_grad(w))  # 2 * w
#' @export
rk_tensor <- function(x, dtype = NULL, requires_grad = FALSE) {
  rk_check_flag(requires_grad, "requires_grad")
  if (!is.null(dtype)) rk_check_dtype(dtype)
  if (is_rk_tensor(x)) {
    out <- if (is.null(dtype)) x else rk_cast(x, dtype)
    if (requires_grad) {
      out <- rk_tensor_detach(out)
      rk_tensor_set_requires_grad(out, TRUE)
    }
    return(out)
  }
  out <- rk_tensor_from_r(x, dtype)
  if (requires_grad) rk_tensor_set_requires_grad(out, TRUE)
  out
}

is_rk_tensor <- function(x) inherits(x, "rkeras_tensor")

#' @export
as.array.rkeras_tensor <- function(x, ...) rk_tensor_to_r(x)

#' @export
as.double.rkeras_tensor <- function(x, ...) as.double(rk_tensor_to_r(x))

#' @export
as.integer.rkeras_tensor <- function(x, ...) as.integer(rk_tensor_to_r(x))

#' @export
as.logical.rkeras_tensor <- function(x, ...) as.logical(rk_tensor_to_r(x))

#' @export
dim.rkeras_tensor <- function(x) rk_tensor_shape(x)

#' @export
length.rkeras_tensor <- function(x) {
  n <- rk_tensor_numel(x)
  if (n <= .Machine$integer.max) as.integer(n) else n
}

#' @export
format.rkeras_tensor <- function(x, ...) {
  if (!rk_tensor_is_valid(x)) return("<rkeras_tensor (invalid: saved and reloaded?)>")
  grad <- if (rk_tensor_requires_grad(x)) " requires_grad=TRUE" else ""
  sprintf("<rkeras_tensor shape=%s dtype=%s%s>", rk_tensor_shape_str(x), rk_tensor_dtype(x), grad)
}

#' @export
print.rkeras_tensor <- function(x, ...) {
  cat(format(x), "\n", sep = "")
  if (rk_tensor_is_valid(x)) print(as.array(x), ...)
  invisible(x)
}

# keras3 keeps values in the tensor's type when mixed with plain R numbers ("weak" R
# scalars): a float32 tensor times 2 stays float32.
rk_as_tensor_like <- function(x, like) {
  if (is_rk_tensor(x)) return(x)
  dt <- rk_tensor_dtype(like)
  if (dt %in% c("float32", "float64") && (is.numeric(x) || is.logical(x)) && !is.object(x)) {
    rk_tensor_from_r(x, dt)
  } else {
    rk_tensor_from_r(x, NULL)
  }
}

#' @export
Ops.rkeras_tensor <- function(e1, e2) {
  if (missing(e2)) {
    return(switch(.Generic,
      "-" = rk_negative(e1),
      "+" = e1,
      "!" = rk_logical_not(e1),
      rk_abort(sprintf("unary operator `%s` is not supported for rkeras tensors", .Generic),
               "rkeras_unsupported_error")
    ))
  }
  op <- switch(.Generic,
    "+" = "add", "-" = "subtract", "*" = "multiply", "/" = "divide", "^" = "power",
    "==" = "equal", "!=" = "not_equal", "<" = "less", "<=" = "less_equal",
    ">" = "greater", ">=" = "greater_equal", "&" = "logical_and", "|" = "logical_or",
    rk_abort(sprintf("operator `%s` is not supported for rkeras tensors", .Generic),
             "rkeras_unsupported_error")
  )
  rk_binary(op, e1, e2)
}

#' @export
Math.rkeras_tensor <- function(x, ...) {
  op <- switch(.Generic,
    exp = "exp", log = "log", log1p = "log1p", sqrt = "sqrt", abs = "abs",
    sign = "sign", tanh = "tanh",
    rk_abort(sprintf("`%s()` is not supported for rkeras tensors", .Generic),
             "rkeras_unsupported_error")
  )
  if (op == "log" && length(list(...)) > 0L)
    rk_abort("log() of a tensor takes no `base` argument", "rkeras_unsupported_error")
  rk_unary(op, x)
}

#' @export
Summary.rkeras_tensor <- function(..., na.rm = FALSE) {
  args <- list(...)
  if (length(args) != 1L)
    rk_abort(sprintf("`%s()` of rkeras tensors takes exactly one tensor", .Generic), "rkeras_value_error")
  switch(.Generic,
    sum = rk_sum(args[[1L]]),
    prod = rk_prod(args[[1L]]),
    max = rk_max(args[[1L]]),
    min = rk_min(args[[1L]]),
    rk_abort(sprintf("`%s()` is not supported for rkeras tensors", .Generic), "rkeras_unsupported_error")
  )
}

#' @export
mean.rkeras_tensor <- function(x, ...) rk_mean(x)

#' Backpropagate from a tensor
#'
#' Computes the gradient of `x` with respect to every leaf tensor created with
#' `requires_grad = TRUE` that `x` depends on, and adds it to that leaf's
#' accumulated gradient (read it with [rk_grad()]).
#'
#' @param x A tensor produced by operations on tensors that require gradients.
#' @param grad The gradient with respect to `x`: `NULL` (ones) for a one-element
#'   `x`, otherwise a tensor or R array of `x`'s shape.
#' @param retain_graph If `FALSE` (the default) the recorded graph is released,
#'   so a second backward through it is an error of class `rkeras_autograd_error`.
#' @return `x`, invisibly.
#' @examples
#' x <- rk_tensor(c(1, 2, 3), requires_grad = TRUE)
#' y <- sum(exp(x))
#' rk_backward(y)
#' as.array(rk_grad(x))  # exp(x)
#' @export
rk_backward <- function(x, grad = NULL, retain_graph = FALSE) {
  rk_check_tensor(x, "x")
  rk_check_flag(retain_graph, "retain_graph")
  if (!is.null(grad)) grad <- rk_as_tensor_like(grad, x)
  rk_tensor_backward(x, grad, retain_graph)
  invisible(x)
}

#' Accumulated gradient of a tensor
#'
#' @param x A tensor created with `requires_grad = TRUE`.
#' @return The gradient accumulated by [rk_backward()] as a tensor, or `NULL`
#'   if none has been computed yet.
#' @examples
#' w <- rk_tensor(2, requires_grad = TRUE)
#' rk_grad(w)          # NULL: nothing computed yet
#' rk_backward(w * w)
#' as.array(rk_grad(w))  # 4
#' @export
rk_grad <- function(x) {
  rk_check_tensor(x, "x")
  rk_tensor_grad(x)
}

#' Evaluate an expression without recording gradients
#'
#' Operations inside `expr` record no autograd history (as for inference or a
#' parameter update). The previous mode is restored on exit, also on error.
#'
#' @param expr An expression, evaluated in the calling environment.
#' @return The value of `expr`.
#' @examples
#' w <- rk_tensor(c(1, 2), requires_grad = TRUE)
#' rk_backward(sum(w * w))
#' w2 <- with_no_grad(w - 0.1 * rk_grad(w))
#' w2  # no requires_grad: the update was not recorded
#' @export
with_no_grad <- function(expr) {
  prev <- rk_set_grad_enabled(FALSE)
  on.exit(rk_set_grad_enabled(prev), add = TRUE)
  expr
}

# Internal autograd helpers (power users: rkeras:::).
rk_requires_grad <- function(x) {
  rk_check_tensor(x, "x")
  rk_tensor_requires_grad(x)
}

rk_set_requires_grad <- function(x, value = TRUE) {
  rk_check_tensor(x, "x")
  rk_check_flag(value, "value")
  rk_tensor_set_requires_grad(x, value)
  invisible(x)
}

rk_zero_grad <- function(x) {
  rk_check_tensor(x, "x")
  rk_tensor_set_grad(x, NULL)
  invisible(x)
}

rk_detach <- function(x) {
  rk_check_tensor(x, "x")
  rk_tensor_detach(x)
}

# ---- classed errors and argument checks ---------------------------------------------

# Classed error without a call (the message names what is wrong); see conditions.R.
rk_abort <- function(message, class) rkeras_abort(message, class = class, call = NULL)

rk_check_flag <- function(x, arg) {
  if (!is.logical(x) || length(x) != 1L || is.na(x))
    rk_abort(sprintf("`%s` must be TRUE or FALSE", arg), "rkeras_type_error")
  invisible(x)
}

rk_check_tensor <- function(x, arg) {
  if (!is_rk_tensor(x))
    rk_abort(sprintf("`%s` must be an rkeras_tensor, not %s", arg, rk_obj_kind(x)), "rkeras_type_error")
  invisible(x)
}

rk_check_dtype <- function(dtype) {
  ok <- c("float32", "float64", "int32", "bool")
  if (!is.character(dtype) || length(dtype) != 1L || is.na(dtype))
    rk_abort("`dtype` must be a single string", "rkeras_type_error")
  if (!dtype %in% ok)
    rk_abort(sprintf("unknown dtype \"%s\"; expected one of %s", dtype, paste0("\"", ok, "\"", collapse = ", ")),
             "rkeras_value_error")
  invisible(dtype)
}

rk_obj_kind <- function(x) {
  if (is.object(x)) return(class(x)[1L])
  typeof(x)
}
