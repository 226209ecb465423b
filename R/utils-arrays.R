# Array utilities of the keras3 API: to_categorical(), array_reshape(),
# normalize(). Pure R; the results are plain R arrays.

# Dimensions of `x` as Keras sees them: dim(x), or the length for a vector.
rk_shape_of <- function(x) {
  d <- dim(x)
  if (is.null(d)) length(x) else d
}

rk_format_shape <- function(d) {
  paste0("(", paste(d, collapse = ", "), if (length(d) == 1L) "," else "", ")")
}

#' Converts a class vector (integers) to a binary class matrix
#'
#' One-hot encodes class labels, e.g. for use with
#' `loss = "categorical_crossentropy"`. Labels are **0-based**, as in keras3:
#' the class `k` sets column `k + 1`. A factor is converted with
#' `as.integer(x) - 1L`, so its first level becomes class 0, and its number of
#' levels is the default `num_classes`.
#'
#' @param x A vector, matrix or array of class labels: whole numbers from 0 to
#'   `num_classes - 1`, or a factor.
#' @param num_classes Total number of classes. `NULL` (the default) uses
#'   `max(x) + 1` (for a factor, the number of levels).
#'
#' @return A double array with the shape of `x` plus a trailing axis of size
#'   `num_classes` (a trailing axis of size 1 in `x` is dropped first, as
#'   Keras does). A vector of `n` labels gives an `n x num_classes` matrix.
#'
#' @examples
#' to_categorical(c(0, 1, 2, 3), num_classes = 4)
#' to_categorical(factor(c("cat", "dog", "cat")))
#' dim(to_categorical(matrix(c(0, 1, 2, 1), 2, 2)))
#' @export
to_categorical <- function(x, num_classes = NULL) {
  shape <- rk_shape_of(x)
  if (is.factor(x)) {
    if (is.null(num_classes)) num_classes <- nlevels(x)
    if (anyNA(x)) {
      rkeras_abort(paste0(
        "`x` must not contain NA: found ", sum(is.na(x)),
        " NA value(s) (factor values outside the levels?)."))
    }
    x <- as.integer(x) - 1L
  } else {
    if (is.data.frame(x)) x <- as.matrix(x)
    if (!(is.numeric(x) || is.logical(x))) {
      rkeras_abort(paste0(
        "`x` must be integer class labels (0-based) or a factor, not ",
        rk_describe_type(x), "."))
    }
    if (anyNA(x)) {
      rkeras_abort(paste0("`x` must not contain NA/NaN: found ",
                          sum(is.na(x)), " such value(s)."))
    }
    if (any(!is.finite(x)) || any(x != round(x))) {
      bad <- x[!is.finite(x) | x != round(x)][1L]
      rkeras_abort(paste0(
        "`x` must contain whole-number class labels (0-based); found ",
        format(bad), "."))
    }
    if (length(x) && min(x) < 0) {
      rkeras_abort(paste0(
        "`x` must contain class labels >= 0 (labels are 0-based); found ",
        format(min(x)), "."))
    }
  }
  x <- as.vector(x)

  if (length(shape) > 1L && shape[length(shape)] == 1L) {
    shape <- shape[-length(shape)]
  }

  max_label <- if (length(x)) max(x) else -1
  if (is.null(num_classes)) {
    if (!length(x)) {
      rkeras_abort("`num_classes` must be given when `x` is empty.")
    }
    num_classes <- max_label + 1
  } else {
    if (!is.numeric(num_classes) || length(num_classes) != 1L ||
        is.na(num_classes) || num_classes < 1 ||
        num_classes != round(num_classes)) {
      rkeras_abort(paste0("`num_classes` must be a single positive whole ",
                          "number, not ", rk_describe_value(num_classes), "."))
    }
    if (max_label >= num_classes) {
      rkeras_abort(paste0(
        "`num_classes` = ", num_classes, " is too small: `x` contains the ",
        "label ", format(max_label), " (labels are 0-based, so at least ",
        format(max_label + 1), " classes are needed)."))
    }
  }
  num_classes <- as.integer(num_classes)

  n <- length(x)
  out <- matrix(0, nrow = n, ncol = num_classes)
  if (n) out[cbind(seq_len(n), as.integer(x) + 1L)] <- 1
  # Column-major flattening of `x` followed by column-major refilling into
  # c(shape, num_classes) keeps index semantics: out[i, j, k] == (x[i, j] == k-1).
  if (length(shape) > 1L) dim(out) <- c(shape, num_classes)
  out
}

rk_describe_type <- function(x) {
  if (is.null(x)) return("NULL")
  cls <- class(x)[1L]
  if (is.character(x)) return("a character vector")
  if (is.list(x) && !is.data.frame(x)) return("a list")
  paste0("an object of class <", cls, ">")
}

rk_describe_value <- function(x) {
  if (is.null(x)) return("NULL")
  if (length(x) != 1L) return(paste0("a length-", length(x), " ", class(x)[1L]))
  if (is.character(x)) return(paste0('"', x, '"'))
  format(x)
}

#' Reshape an array using row-major (C-style) ordering
#'
#' Unlike `dim<-()`, which refills an array in column-major (Fortran) order,
#' `array_reshape()` by default keeps the *row-major* order of the elements,
#' as NumPy and Keras do. This is the function to use to flatten images before
#' a dense layer: `array_reshape(x, c(nrow(x), 784))` keeps each image's pixels
#' in the order Keras expects. This matches keras3 (which re-exports
#' reticulate's function of the same name).
#'
#' @param x An array, matrix or vector (a data frame is converted with
#'   [as.matrix()]).
#' @param dim The new dimensions. One entry may be `-1` (or `NA`): it is
#'   inferred from the number of elements.
#' @param order `"C"` (row-major, the default) or `"F"` (column-major, the same
#'   as `dim<-()`).
#'
#' @return An array with dimensions `dim`, of the same storage type as `x`
#'   (dimnames are dropped).
#'
#' @examples
#' x <- 1:6
#' array_reshape(x, c(2, 3))               # rows filled first
#' array_reshape(x, c(2, 3), order = "F")  # same as matrix(x, 2, 3)
#' images <- array(0:23, dim = c(2, 3, 4))
#' dim(array_reshape(images, c(2, 12)))
#' array_reshape(images, c(2, -1))[1, 1:4] # images[1, 1, 1:4]
#' @export
array_reshape <- function(x, dim, order = c("C", "F")) {
  order <- match.arg(order)
  if (is.data.frame(x)) x <- as.matrix(x)
  if (!is.atomic(x) || is.null(x)) {
    rkeras_abort(paste0("`x` must be an array, matrix or vector, not ",
                        rk_describe_type(x), "."))
  }
  dim <- rk_resolve_dim(dim, length(x))
  old_dim <- rk_shape_of(x)
  x <- unname(x)
  attributes(x) <- NULL

  if (order == "F" || length(old_dim) <= 1L && length(dim) <= 1L) {
    dim(x) <- dim
    return(x)
  }

  if (length(old_dim) >= 2L && length(dim) >= 2L && old_dim[1L] == dim[1L]) {
    # Fast path (the common case, e.g. (N, 28, 28) -> (N, 784)): the first
    # axis is kept, so each sample's trailing block is reordered the same way.
    # Work out that reordering once on a small index array, then gather
    # columns of the (N, rest) matrix.
    n <- old_dim[1L]
    idx <- rk_reshape_c(seq_len(prod(old_dim[-1L])), old_dim[-1L], dim[-1L])
    dim(x) <- c(n, length(idx))
    out <- x[, as.vector(idx), drop = FALSE]
    dim(out) <- dim
    return(out)
  }

  rk_reshape_c(x, old_dim, dim)
}

# Row-major reshape of the plain vector `x` (column-major data of an array
# with dimensions `from`) into dimensions `to`.
rk_reshape_c <- function(x, from, to) {
  if (length(from) > 1L) {
    x <- aperm(array(x, dim = from), rev(seq_along(from)))
  }
  x <- as.vector(x)
  if (length(to) > 1L) {
    x <- aperm(array(x, dim = rev(to)), rev(seq_along(to)))
  } else {
    dim(x) <- to
  }
  x
}

rk_resolve_dim <- function(dim, n) {
  if (!is.numeric(dim) && !(is.logical(dim) && all(is.na(dim)))) {
    rkeras_abort(paste0("`dim` must be a numeric vector, not ",
                        rk_describe_type(dim), "."))
  }
  dim <- as.numeric(dim)
  unknown <- is.na(dim) | dim == -1
  if (sum(unknown) > 1L) {
    rkeras_abort("`dim` can have at most one unknown (-1 or NA) entry.")
  }
  known <- dim[!unknown]
  if (any(known < 0) || any(known != round(known))) {
    rkeras_abort(paste0("`dim` entries must be non-negative whole numbers ",
                        "(or one -1); got ", rk_format_shape(dim), "."))
  }
  if (any(unknown)) {
    p <- prod(known)
    if (p == 0 || n %% p != 0) {
      rkeras_abort(paste0("cannot reshape array of size ", n, " into shape ",
                          rk_format_shape(ifelse(unknown, -1, dim)), "."))
    }
    dim[unknown] <- n / p
  }
  if (prod(dim) != n) {
    rkeras_abort(paste0("cannot reshape array of size ", n, " into shape ",
                        rk_format_shape(dim), "."))
  }
  as.integer(dim)
}

#' Normalize an array along an axis
#'
#' Divides `x` by its `order`-norm computed along `axis`, as
#' `keras.utils.normalize()` does. Slices whose norm is 0 are left unchanged.
#'
#' @param x A numeric array, matrix or vector.
#' @param axis The axis along which to normalize, **1-based** as everywhere in
#'   the keras3 R API; negative values count from the end (`-1`, the default,
#'   is the last axis, i.e. each row of a matrix is normalized).
#' @param order The order of the norm: `2` (Euclidean, the default), `1`,
#'   `Inf`, or any other positive number `p` (`sum(abs(x)^p)^(1/p)`).
#'
#' @return A double array with the dimensions of `x`.
#'
#' @examples
#' x <- rbind(c(3, 4), c(1, 0), c(0, 0))
#' normalize(x)            # each row has Euclidean norm 1 (the zero row stays)
#' normalize(x, axis = 1)  # each column
#' normalize(c(1, 1, 2), order = 1)
#' @export
normalize <- function(x, axis = -1L, order = 2L) {
  if (is.data.frame(x)) x <- as.matrix(x)
  if (!(is.numeric(x) || is.logical(x))) {
    rkeras_abort(paste0("`x` must be a numeric array, not ",
                        rk_describe_type(x), "."))
  }
  if (!is.numeric(order) || length(order) != 1L || is.na(order) ||
      order <= 0) {
    rkeras_abort(paste0("`order` must be a single positive number ",
                        "(e.g. 1, 2 or Inf), not ",
                        rk_describe_value(order), "."))
  }
  d <- dim(x)
  nd <- if (is.null(d)) 1L else length(d)
  ax <- rk_as_axis(axis, nd)

  norm_fun <- function(v) {
    v <- abs(v)
    if (order == 2) sqrt(sum(v * v))
    else if (order == 1) sum(v)
    else if (is.infinite(order)) max(v)
    else sum(v^order)^(1 / order)
  }

  storage.mode(x) <- "double"
  if (nd == 1L) {
    nrm <- norm_fun(x)
    if (nrm == 0) nrm <- 1
    return(x / nrm)
  }
  keep <- setdiff(seq_len(nd), ax)
  if (order == 2 && nd == 2L) {
    nrm <- if (ax == 2L) sqrt(rowSums(x * x)) else sqrt(colSums(x * x))
  } else {
    nrm <- apply(x, keep, norm_fun)
  }
  nrm[nrm == 0] <- 1
  sweep(x, keep, nrm, FUN = "/", check.margin = FALSE)
}

# Convert a keras3 (1-based, negative from the end) axis to a positive
# 1-based R axis, for an array with `ndim` dimensions.
rk_as_axis <- function(axis, ndim) {
  if (!is.numeric(axis) || length(axis) != 1L || is.na(axis) ||
      axis != round(axis)) {
    rkeras_abort(paste0("`axis` must be a single whole number, not ",
                        rk_describe_value(axis), "."),
                 call = sys.call(-1))
  }
  if (axis == 0) {
    rkeras_abort(paste0("`axis` is 1-based (negative values count from the ",
                        "end); 0 is not a valid axis."), call = sys.call(-1))
  }
  ax <- if (axis < 0) ndim + axis + 1 else axis
  if (ax < 1 || ax > ndim) {
    rkeras_abort(paste0("`axis` = ", axis, " is out of range for an array ",
                        "with ", ndim, " dimension(s)."), call = sys.call(-1))
  }
  as.integer(ax)
}
