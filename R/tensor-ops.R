# Internal wrappers over every engine op: rk_<op>() converts R arguments to tensors
# (tensors pass through), converts keras3-style 1-based axes to the engine's 0-based ones,
# and calls the single entry point rk_call_op(name, tensors, params). They are the seed
# of the public op_*() family; call them as rkeras:::rk_add() etc.
#
# Axis convention (keras3): `axis = 1` is the first dimension, negative axes count from
# the end (-1 is the last), 0 is an error. Indices returned or taken by argmax/argmin,
# take and one_hot are 1-based unless `zero_indexed = TRUE`; class labels of the sparse
# cross-entropy are 0-based, as in keras3.

# ---- helpers -------------------------------------------------------------------------

rk_op_call <- function(name, tensors, params = list()) rk_call_op(name, tensors, params)

rk_as_tensor <- function(x) if (is_rk_tensor(x)) x else rk_tensor_from_r(x, NULL)

rk_rank <- function(x) length(rk_tensor_shape(x))

rk_shape_str <- function(x) rk_tensor_shape_str(x)

rk_unary <- function(name, x, ...) rk_op_call(name, list(rk_as_tensor(x)), list(...))

# Plain R values take the dtype of a floating tensor operand (see rk_rk_as_tensor_like()).
rk_binary <- function(name, x1, x2) {
  if (is_rk_tensor(x1)) {
    x2 <- rk_as_tensor_like(x2, x1)
  } else if (is_rk_tensor(x2)) {
    x1 <- rk_as_tensor_like(x1, x2)
  } else {
    x1 <- rk_as_tensor(x1)
    x2 <- rk_as_tensor(x2)
  }
  rk_op_call(name, list(x1, x2))
}

# Converts tensors and plain values alike; plain values follow the first floating tensor.
rk_as_tensor_list <- function(xs) {
  if (is_rk_tensor(xs) || !is.list(xs)) xs <- list(xs)
  like <- Find(function(x) is_rk_tensor(x) && rk_tensor_dtype(x) %in% c("float32", "float64"), xs)
  lapply(xs, function(x) if (is.null(like)) rk_as_tensor(x) else rk_as_tensor_like(x, like))
}

rk_reduce_op <- function(name, x, axis, keepdims) {
  x <- rk_as_tensor(x)
  rk_check_flag(keepdims, "keepdims")
  rk_op_call(name, list(x), list(axis = rk_axis0(axis, rk_rank(x), rk_shape_str(x)), keepdims = keepdims))
}

# 1-based (or negative) R axes -> 0-based (or negative) engine axes, checked against `rank`.
rk_axis0 <- function(axis, rank, shape = NULL) {
  if (is.null(axis)) return(NULL)
  if (!is.numeric(axis) || anyNA(axis) || any(axis != trunc(axis)))
    rk_abort(sprintf("`axis` must be whole numbers, got %s", deparse1(axis)), "rkeras_value_error")
  axis <- as.integer(axis)
  bad <- axis == 0L | axis > rank | axis < -rank
  if (any(bad)) {
    what <- if (is.null(shape)) sprintf("rank %d", rank) else sprintf("rank %d (shape %s)", rank, shape)
    rk_abort(sprintf("axis %d is out of range for a tensor of %s; axes are 1-based (1 is the first dimension, -1 the last)",
                     axis[bad][1L], what), "rkeras_index_error")
  }
  ifelse(axis > 0L, axis - 1L, axis)
}

rk_as_shape <- function(shape, arg = "shape") {
  if (is_rk_tensor(shape)) shape <- as.array(shape)
  if (is.list(shape)) shape <- unlist(shape)
  if (is.null(shape)) return(integer())
  if (is.logical(shape) && all(is.na(shape))) shape <- as.numeric(shape)
  if (!is.numeric(shape) || any(!is.na(shape) & shape != trunc(shape)))
    rk_abort(sprintf("`%s` must be a vector of whole numbers, got %s", arg, deparse1(shape)), "rkeras_value_error")
  shape <- as.numeric(shape)
  shape[is.na(shape)] <- -1  # NA: the extent reshape infers
  shape
}

rk_dtype_or <- function(dtype, default = "float32") {
  if (is.null(dtype)) return(default)
  rk_check_dtype(dtype)
}

# The engine seed for one random op: drawn from R's RNG unless given, so set.seed() makes
# the draw reproducible.
rk_seed_arg <- function(seed) {
  if (is.null(seed)) return(as.numeric(sample.int(.Machine$integer.max, 1L)))
  if (!is.numeric(seed) || length(seed) != 1L || is.na(seed) || seed < 0 || seed != trunc(seed))
    rk_abort("`seed` must be a single non-negative whole number", "rkeras_value_error")
  as.numeric(seed)
}

# int32 index tensor from R or tensor indices; 1-based positive indices become 0-based.
rk_index_tensor <- function(indices, zero_indexed) {
  rk_check_flag(zero_indexed, "zero_indexed")
  if (is_rk_tensor(indices)) {
    if (rk_tensor_dtype(indices) != "int32") indices <- rk_cast(indices, "int32")
    if (zero_indexed) return(indices)
    return(rk_where(indices > 0L, indices - 1L, indices))
  }
  if (!is.numeric(indices) || anyNA(indices) || any(indices != trunc(indices)))
    rk_abort(sprintf("indices must be whole numbers without NA, got %s", deparse1(indices[seq_len(min(5L, length(indices)))])),
             "rkeras_value_error")
  idx <- indices
  if (!zero_indexed) idx[idx > 0] <- idx[idx > 0] - 1
  storage.mode(idx) <- "integer"
  rk_tensor_from_r(idx, NULL)
}

# ---- creation ------------------------------------------------------------------------

rk_full <- function(shape, fill_value, dtype = NULL) rk_op_call("full", list(), list(shape = rk_as_shape(shape), value = fill_value, dtype = rk_dtype_or(dtype)))
rk_zeros <- function(shape, dtype = NULL) rk_op_call("zeros", list(), list(shape = rk_as_shape(shape), dtype = rk_dtype_or(dtype)))
rk_ones <- function(shape, dtype = NULL) rk_op_call("ones", list(), list(shape = rk_as_shape(shape), dtype = rk_dtype_or(dtype)))
rk_zeros_like <- function(x, dtype = NULL) rk_maybe_cast(rk_unary("zeros_like", x), dtype)
rk_ones_like <- function(x, dtype = NULL) rk_maybe_cast(rk_unary("ones_like", x), dtype)
rk_scalar <- function(value, dtype = NULL) rk_op_call("scalar", list(), list(value = value, dtype = rk_dtype_or(dtype)))
rk_clone <- function(x) rk_unary("clone", x)
rk_cast <- function(x, dtype) rk_unary("cast", x, dtype = rk_check_dtype(dtype))
rk_random_uniform <- function(shape, minval = 0, maxval = 1, dtype = NULL, seed = NULL) rk_op_call("random_uniform", list(), list(shape = rk_as_shape(shape), minval = minval, maxval = maxval, dtype = rk_dtype_or(dtype), seed = rk_seed_arg(seed)))
rk_random_normal <- function(shape, mean = 0, stddev = 1, dtype = NULL, seed = NULL) rk_op_call("random_normal", list(), list(shape = rk_as_shape(shape), mean = mean, stddev = stddev, dtype = rk_dtype_or(dtype), seed = rk_seed_arg(seed)))

rk_maybe_cast <- function(x, dtype) if (is.null(dtype)) x else rk_cast(x, dtype)

# ---- elementwise ---------------------------------------------------------------------

rk_add <- function(x1, x2) rk_binary("add", x1, x2)
rk_subtract <- function(x1, x2) rk_binary("subtract", x1, x2)
rk_multiply <- function(x1, x2) rk_binary("multiply", x1, x2)
rk_divide <- function(x1, x2) rk_binary("divide", x1, x2)
rk_power <- function(x1, x2) rk_binary("power", x1, x2)
rk_maximum <- function(x1, x2) rk_binary("maximum", x1, x2)
rk_minimum <- function(x1, x2) rk_binary("minimum", x1, x2)
rk_negative <- function(x) rk_unary("negative", x)
rk_exp <- function(x) rk_unary("exp", x)
rk_log <- function(x) rk_unary("log", x)
rk_log1p <- function(x) rk_unary("log1p", x)
rk_sqrt <- function(x) rk_unary("sqrt", x)
rk_square <- function(x) rk_unary("square", x)
rk_abs <- function(x) rk_unary("abs", x)
rk_sign <- function(x) rk_unary("sign", x)
rk_reciprocal <- function(x) rk_unary("reciprocal", x)
rk_tanh <- function(x) rk_unary("tanh", x)
rk_sigmoid <- function(x) rk_unary("sigmoid", x)
rk_relu <- function(x) rk_unary("relu", x)
rk_relu6 <- function(x) rk_unary("relu6", x)
rk_elu <- function(x, alpha = 1) rk_unary("elu", x, alpha = alpha)
rk_selu <- function(x) rk_unary("selu", x)
rk_softplus <- function(x) rk_unary("softplus", x)
rk_softsign <- function(x) rk_unary("softsign", x)
rk_gelu <- function(x, approximate = TRUE) rk_unary("gelu", x, approximate = rk_check_flag(approximate, "approximate"))
rk_silu <- function(x) rk_unary("silu", x)
rk_mish <- function(x) rk_unary("mish", x)
rk_leaky_relu <- function(x, negative_slope = 0.2) rk_unary("leaky_relu", x, negative_slope = negative_slope)
rk_hard_sigmoid <- function(x, slope = 1 / 6, offset = 0.5) rk_unary("hard_sigmoid", x, slope = slope, offset = offset)
rk_erf <- function(x) rk_unary("erf", x)
rk_clip <- function(x, x_min, x_max) rk_unary("clip", x, min = x_min, max = x_max)
rk_equal <- function(x1, x2) rk_binary("equal", x1, x2)
rk_not_equal <- function(x1, x2) rk_binary("not_equal", x1, x2)
rk_less <- function(x1, x2) rk_binary("less", x1, x2)
rk_less_equal <- function(x1, x2) rk_binary("less_equal", x1, x2)
rk_greater <- function(x1, x2) rk_binary("greater", x1, x2)
rk_greater_equal <- function(x1, x2) rk_binary("greater_equal", x1, x2)
rk_logical_and <- function(x1, x2) rk_binary("logical_and", x1, x2)
rk_logical_or <- function(x1, x2) rk_binary("logical_or", x1, x2)
rk_logical_not <- function(x) rk_unary("logical_not", x)
rk_where <- function(condition, x1, x2) rk_op_call("where", c(list(rk_as_tensor(condition)), rk_as_tensor_list(list(x1, x2))))
rk_dropout <- function(x, rate, noise_shape = NULL, seed = NULL) rk_unary("dropout", x, rate = rate, noise_shape = rk_as_shape(noise_shape, "noise_shape"), seed = rk_seed_arg(seed))
rk_sum_to <- function(x, shape) rk_unary("sum_to", x, shape = rk_as_shape(shape))
rk_broadcast_to <- function(x, shape) rk_unary("broadcast_to", x, shape = rk_as_shape(shape))

# ---- reductions ----------------------------------------------------------------------

rk_sum <- function(x, axis = NULL, keepdims = FALSE) rk_reduce_op("sum", x, axis, keepdims)
rk_mean <- function(x, axis = NULL, keepdims = FALSE) rk_reduce_op("mean", x, axis, keepdims)
rk_max <- function(x, axis = NULL, keepdims = FALSE) rk_reduce_op("max", x, axis, keepdims)
rk_min <- function(x, axis = NULL, keepdims = FALSE) rk_reduce_op("min", x, axis, keepdims)
rk_prod <- function(x, axis = NULL, keepdims = FALSE) rk_reduce_op("prod", x, axis, keepdims)
rk_logsumexp <- function(x, axis = NULL, keepdims = FALSE) rk_reduce_op("logsumexp", x, axis, keepdims)
rk_argmax <- function(x, axis = NULL, keepdims = FALSE, zero_indexed = FALSE) rk_arg_reduce("argmax", x, axis, keepdims, zero_indexed)
rk_argmin <- function(x, axis = NULL, keepdims = FALSE, zero_indexed = FALSE) rk_arg_reduce("argmin", x, axis, keepdims, zero_indexed)

# axis = NULL: index into the flattened (row-major) tensor, as keras3.
rk_arg_reduce <- function(name, x, axis, keepdims, zero_indexed) {
  x <- rk_as_tensor(x)
  rk_check_flag(keepdims, "keepdims")
  rk_check_flag(zero_indexed, "zero_indexed")
  if (is.null(axis)) {
    x <- rk_reshape(x, -1)
    axis <- 1L
  }
  if (length(axis) != 1L) rk_abort("`axis` must be a single axis", "rkeras_value_error")
  out <- rk_op_call(name, list(x), list(axis = rk_axis0(axis, rk_rank(x), rk_shape_str(x)), keepdims = keepdims))
  if (zero_indexed) out else out + 1L
}

# ---- softmax and losses --------------------------------------------------------------

rk_softmax <- function(x, axis = -1) { x <- rk_as_tensor(x); rk_unary("softmax", x, axis = rk_axis0(axis, rk_rank(x), rk_shape_str(x))) }
rk_log_softmax <- function(x, axis = -1) { x <- rk_as_tensor(x); rk_unary("log_softmax", x, axis = rk_axis0(axis, rk_rank(x), rk_shape_str(x))) }
rk_categorical_crossentropy <- function(target, output, from_logits = FALSE, epsilon = 1e-7) rk_loss_op("categorical_crossentropy", target, output, from_logits, epsilon)
rk_sparse_categorical_crossentropy <- function(target, output, from_logits = FALSE, epsilon = 1e-7) rk_loss_op("sparse_categorical_crossentropy", target, output, from_logits, epsilon, like_output = FALSE)
rk_binary_crossentropy <- function(target, output, from_logits = FALSE, epsilon = 1e-7) rk_loss_op("binary_crossentropy", target, output, from_logits, epsilon)

rk_loss_op <- function(name, target, output, from_logits, epsilon, like_output = TRUE) {
  output <- rk_as_tensor(output)
  target <- if (like_output) rk_as_tensor_like(target, output) else rk_as_tensor(target)
  rk_op_call(name, list(target, output), list(from_logits = rk_check_flag(from_logits, "from_logits"), epsilon = epsilon))
}

# ---- linear algebra ------------------------------------------------------------------

rk_matmul <- function(x1, x2) rk_binary("matmul", x1, x2)

# ---- shape and indexing --------------------------------------------------------------

rk_reshape <- function(x, newshape) rk_unary("reshape", x, shape = rk_as_shape(newshape, "newshape"))
rk_transpose <- function(x, axes = NULL) { x <- rk_as_tensor(x); rk_unary("transpose", x, perm = rk_axis0(axes, rk_rank(x), rk_shape_str(x))) }
rk_expand_dims <- function(x, axis) { x <- rk_as_tensor(x); rk_unary("expand_dims", x, axis = rk_axis0(axis, rk_rank(x) + 1L, rk_shape_str(x))) }
rk_squeeze <- function(x, axis = NULL) { x <- rk_as_tensor(x); rk_unary("squeeze", x, axis = rk_axis0(axis, rk_rank(x), rk_shape_str(x))) }
rk_concatenate <- function(xs, axis = 1) { xs <- rk_as_tensor_list(xs); rk_op_call("concatenate", xs, list(axis = rk_axis0(axis, rk_rank(xs[[1L]]), rk_shape_str(xs[[1L]])))) }
rk_stack <- function(xs, axis = 1) { xs <- rk_as_tensor_list(xs); rk_op_call("stack", xs, list(axis = rk_axis0(axis, rk_rank(xs[[1L]]) + 1L, rk_shape_str(xs[[1L]])))) }
rk_split <- function(x, sizes, axis = 1) { x <- rk_as_tensor(x); rk_unary("split", x, sizes = rk_as_shape(sizes, "sizes"), axis = rk_axis0(axis, rk_rank(x), rk_shape_str(x))) }
rk_slice <- function(x, start_indices, shape) rk_unary("slice", x, start = rk_as_shape(start_indices, "start_indices") - 1, size = rk_as_shape(shape))
rk_take <- function(x, indices, axis = NULL, zero_indexed = FALSE) {
  x <- rk_as_tensor(x)
  if (is.null(axis)) {
    x <- rk_reshape(x, -1)
    axis <- 1L
  }
  rk_op_call("take", list(x, rk_index_tensor(indices, zero_indexed)), list(axis = rk_axis0(axis, rk_rank(x), rk_shape_str(x))))
}
rk_one_hot <- function(x, num_classes, dtype = NULL, zero_indexed = FALSE) rk_op_call("one_hot", list(rk_index_tensor(x, zero_indexed)), list(depth = num_classes, dtype = rk_dtype_or(dtype)))
