# Models: keras_model_sequential(), keras_input(), keras_model() (functional graphs), calling
# models, layer access and weights, freezing, and the internal interface the compile/fit code
# uses (rk_model_graph() and friends). A model is a layer (same callable object and state
# environment) with is_model = TRUE.

# ---- keras_input -------------------------------------------------------------------------------

#' Create a symbolic input for a functional model
#'
#' `keras_input()` (alias `layer_input()`) returns a symbolic tensor (a `KerasTensor`) that
#' layers can be applied to; [keras_model()] then builds a model from such inputs and the
#' outputs computed from them.
#'
#' @param shape The input shape without the batch axis, e.g. `c(784)` or `c(28, 28, 1)`;
#'   `NA` for an unknown extent.
#' @param batch_size Optional fixed batch size.
#' @param dtype The input's dtype (default `config_floatx()`, i.e. `"float32"`).
#' @param sparse,ragged Not supported (must be `NULL` or `FALSE`).
#' @param batch_shape The full shape including the batch axis (instead of `shape` and
#'   `batch_size`).
#' @param name Optional name of the input (and of its input layer).
#' @param tensor Not supported (must be `NULL`).
#' @param optional Not supported (must be `FALSE`).
#' @return A symbolic tensor of class `keras.src.backend.common.keras_tensor.KerasTensor`.
#' @examples
#' x <- keras_input(shape = c(784))
#' x
#' dim(x)
#' @export
keras_input <- function(shape = NULL, batch_size = NULL, dtype = NULL, sparse = NULL, ragged = NULL,
                        batch_shape = NULL, name = NULL, tensor = NULL, optional = FALSE) {
  if (isTRUE(sparse) || isTRUE(ragged) || !is.null(tensor) || isTRUE(optional))
    rk_abort("keras_input(): `sparse`, `ragged`, `tensor` and `optional` are not supported by rkeras",
             "rkeras_unsupported_error")
  if (!is.null(batch_shape)) {
    bshape <- rk_as_partial_shape(batch_shape, "batch_shape")
  } else {
    if (is.null(shape))
      rk_abort("You must pass a `shape` argument to keras_input().", "rkeras_value_error")
    shape <- rk_as_partial_shape(shape, "shape")
    bs <- if (is.null(batch_size)) NA_integer_ else rk_as_partial_shape(batch_size, "batch_size")[1L]
    bshape <- c(bs, shape)
  }
  dtype <- if (is.null(dtype)) config_floatx() else rk_check_dtype(dtype)
  st <- rk_new_input_layer(bshape, dtype, name)
  st$nodes[[1L]]$outputs[[1L]]
}

#' @rdname keras_input
#' @export
layer_input <- keras_input

rk_new_input_layer <- function(batch_shape, dtype, name = NULL) {
  if (!is.null(name) && (!is.character(name) || length(name) != 1L || is.na(name) || !nzchar(name)))
    rk_abort("`name` must be a non-empty string", "rkeras_type_error")
  st <- rk_new_layer_state("InputLayer", list(), list(name = name), module = "keras.src.layers.core.input_layer")
  st$config <- list(batch_shape = batch_shape, dtype = dtype, sparse = FALSE)
  st$dtype <- dtype
  st$built <- TRUE
  st$build_shapes <- list(batch_shape)
  st$is_input <- TRUE
  kt <- rk_new_keras_tensor(batch_shape, dtype, name = name, op = st, node_index = 0L, tensor_index = 0L)
  st$nodes <- list(list(id = rk_next_id(), inputs = list(), outputs = list(kt)))
  rk_wrap_layer(st)
  st
}

# ---- keras_model_sequential --------------------------------------------------------------------

#' Create a Sequential model
#'
#' A Sequential model is a linear stack of layers. Layers are added in place with the pipe
#' (`model |> layer_dense(32)`), so the model does not need to be reassigned.
#'
#' @param input_shape The shape of the input without the batch axis (optional). When given, the
#'   model is built as layers are added and `summary()` shows output shapes and parameter counts.
#' @param name Model name (default: an automatic `"sequential"`, `"sequential_1"`, ...).
#' @param ... Further arguments: `input_shape` etc. may also be given here.
#' @param input_dtype,input_batch_size,input_batch_shape,input_name Further settings of the input.
#' @param input_sparse,input_ragged,input_tensor,input_optional Not supported (keep defaults).
#' @param trainable Whether the model's weights are updated by training.
#' @param layers A list of layers to add.
#' @return A Sequential model.
#' @examples
#' model <- keras_model_sequential(input_shape = 784)
#' model |>
#'   layer_dense(256, activation = "relu") |>
#'   layer_dense(10, activation = "softmax")
#' model
#' @export
keras_model_sequential <- function(input_shape = NULL, name = NULL, ..., input_dtype = NULL,
                                   input_batch_size = NULL, input_sparse = NULL, input_ragged = NULL,
                                   input_batch_shape = NULL, input_name = NULL, input_tensor = NULL,
                                   input_optional = FALSE, trainable = TRUE, layers = list()) {
  dots <- list(...)
  if (length(dots))
    rk_abort(sprintf("Unrecognized keyword arguments passed to Sequential: %s", paste(names(dots) %||% "", collapse = ", ")),
             "rkeras_value_error")
  if (isTRUE(input_sparse) || isTRUE(input_ragged) || !is.null(input_tensor) || isTRUE(input_optional))
    rk_abort("keras_model_sequential(): sparse, ragged, tensor and optional inputs are not supported",
             "rkeras_unsupported_error")
  st <- rk_new_model_state("Sequential", "keras.src.models.sequential.Sequential", name, "sequential", trainable)
  st$model_type <- "sequential"
  st$seq_layers <- list()
  st$input_layer <- NULL
  st$seq_kts <- NULL
  model <- rk_wrap_layer(st)
  if (!is.null(input_shape) || !is.null(input_batch_shape)) {
    kt <- keras_input(shape = input_shape, batch_size = input_batch_size, dtype = input_dtype,
                      batch_shape = input_batch_shape, name = input_name)
    rk_sequential_set_input(st, kt$history$op)
  }
  if (rk_is_layer(layers)) layers <- list(layers)
  for (l in layers) rk_sequential_add(model, l)
  model
}

rk_new_model_state <- function(class_name, py_class, name, prefix, trainable) {
  rk_check_flag(trainable, "trainable")
  if (!is.null(name) && (!is.character(name) || length(name) != 1L || is.na(name) || !nzchar(name)))
    rk_abort("`name` must be a non-empty string", "rkeras_type_error")
  st <- new.env(parent = emptyenv())
  st$id <- rk_next_id()
  st$class_name <- class_name
  st$py_class <- py_class
  st$is_model <- TRUE
  st$name <- name %||% rk_unique_name(prefix)
  st$dtype <- config_floatx()
  st$trainable <- trainable
  st$config <- list()
  st$nodes <- list()
  st$weights <- list()
  st$engine_cache <- new.env(parent = emptyenv())
  st
}

rk_sequential_set_input <- function(st, input_st) {
  st$input_layer <- input_st
  st$seq_kts <- list(input_st$nodes[[1L]]$outputs[[1L]])
  invisible(st)
}

# Calls every layer after the input symbolically (building them); on error the model is left
# as it was.
rk_sequential_rebuild <- function(st) {
  if (is.null(st$input_layer)) return(invisible(st))
  kts <- list(st$input_layer$nodes[[1L]]$outputs[[1L]])
  for (l in st$seq_layers) {
    out <- rk_call_symbolic(rk_state(l), list(kts[[length(kts)]]))
    if (length(out) != 1L)
      rk_abort(sprintf("All layers in a Sequential model should have a single output tensor; layer \"%s\" has %d outputs.",
                       rk_state(l)$name, length(out)), "rkeras_value_error")
    kts[[length(kts) + 1L]] <- out[[1L]]
  }
  st$seq_kts <- kts
  rk_bump_version()
  invisible(st)
}

rk_sequential_add <- function(model, layer) {
  st <- rk_state(model)
  if (rk_is_keras_tensor(layer) && isTRUE(layer$history$op$is_input)) layer <- layer$history$op$self
  if (!rk_is_layer(layer))
    rk_abort(sprintf("Only instances of `keras.Layer` can be added to a Sequential model. Received: %s",
                     rk_short_value(layer)), "rkeras_type_error")
  lst <- rk_state(layer)
  if (identical(lst, st)) rk_abort("A model cannot be added to itself.", "rkeras_value_error")
  if (isTRUE(lst$is_input)) {
    if (!is.null(st$input_layer))
      rk_abort(sprintf("Sequential model '%s' has already been configured to use input shape %s. You cannot add a different Input layer to it.",
                       st$name, rk_shape_tuple(st$input_layer$config$batch_shape)), "rkeras_value_error")
    old <- list(st$input_layer, st$seq_kts)
    rk_sequential_set_input(st, lst)
    tryCatch(rk_sequential_rebuild(st), error = function(e) {
      st$input_layer <- old[[1L]]
      st$seq_kts <- old[[2L]]
      stop(e)
    })
    rk_bump_version()
    return(invisible(model))
  }
  names_now <- vapply(st$seq_layers, function(l) rk_state(l)$name, "")
  if (lst$name %in% names_now)
    rk_abort(sprintf("All layers added to a Sequential model should have unique names. Name \"%s\" is already the name of a layer in this model. Update the `name` argument to pass a unique name.",
                     lst$name), "rkeras_value_error")
  old_input <- st$input_layer
  old_kts <- st$seq_kts
  if (is.null(st$input_layer) && !length(st$seq_layers) && !is.null(lst$batch_input_shape)) {
    bs <- lst$batch_input_shape
    rk_sequential_set_input(st, rk_new_input_layer(bs, lst$dtype))
  }
  st$seq_layers[[length(st$seq_layers) + 1L]] <- layer
  ok <- FALSE
  on.exit(if (!ok) {
    st$seq_layers[[length(st$seq_layers)]] <- NULL
    st$input_layer <- old_input
    st$seq_kts <- old_kts
  })
  if (!is.null(st$input_layer)) {
    kts <- st$seq_kts
    if (length(kts) == length(st$seq_layers)) {
      out <- rk_call_symbolic(lst, list(kts[[length(kts)]]))
      if (length(out) != 1L)
        rk_abort(sprintf("All layers in a Sequential model should have a single output tensor; layer \"%s\" has %d outputs.",
                         lst$name, length(out)), "rkeras_value_error")
      st$seq_kts[[length(kts) + 1L]] <- out[[1L]]
    } else {
      rk_sequential_rebuild(st)
    }
  }
  ok <- TRUE
  rk_model_invalidate(model)
  invisible(model)
}

# ---- keras_model (functional) ------------------------------------------------------------------

#' Create a functional model from inputs and outputs
#'
#' @param inputs A symbolic input from [keras_input()], or a list (optionally named) of them.
#' @param outputs A symbolic tensor computed from `inputs` by applying layers, or a list
#'   (optionally named) of them.
#' @param ... `name` and `trainable`.
#' @return A functional model.
#' @examples
#' inputs <- keras_input(shape = 784)
#' outputs <- inputs |> layer_dense(64, activation = "relu") |> layer_dense(10)
#' model <- keras_model(inputs, outputs)
#' model
#' @export
keras_model <- function(inputs = NULL, outputs = NULL, ...) {
  dots <- list(...)
  bad <- setdiff(names(dots) %||% rep("?", length(dots)), c("name", "trainable"))
  if (length(bad))
    rk_abort(sprintf("Unrecognized keyword arguments passed to keras_model(): %s", paste(bad, collapse = ", ")),
             "rkeras_value_error")
  if (is.null(inputs) || is.null(outputs))
    rk_abort("keras_model() needs both `inputs` and `outputs` (symbolic tensors from keras_input() and layers applied to them)",
             "rkeras_value_error")
  in_list <- rk_as_kt_list(inputs, "inputs")
  out_list <- rk_as_kt_list(outputs, "outputs")
  for (i in seq_along(in_list)) {
    op <- in_list[[i]]$history$op
    if (!isTRUE(op$is_input))
      rk_abort(sprintf("All `inputs` of keras_model() must come from keras_input(); input %d was produced by layer \"%s\".",
                       i, op$name), "rkeras_value_error")
  }
  st <- rk_new_model_state("Functional", "keras.src.models.functional.Functional", dots$name, "functional",
                           dots$trainable %||% TRUE)
  st$model_type <- "functional"
  st$inputs <- in_list
  st$outputs <- out_list
  st$input_names <- if (!is.null(names(in_list)) && all(nzchar(names(in_list)))) names(in_list) else
    vapply(in_list, function(t) t$history$op$name, "")
  st$output_names <- if (!is.null(names(out_list)) && all(nzchar(names(out_list)))) names(out_list) else
    vapply(out_list, function(t) t$history$op$name, "")
  st$inputs_named <- !is.null(names(inputs)) && is.list(inputs) && !rk_is_keras_tensor(inputs)
  st$outputs_named <- !is.null(names(outputs)) && is.list(outputs) && !rk_is_keras_tensor(outputs)
  rk_functional_map_graph(st)
  model <- rk_wrap_layer(st)
  model
}

rk_as_kt_list <- function(x, arg) {
  l <- if (rk_is_keras_tensor(x)) list(x) else if (is.list(x)) x else NULL
  if (is.null(l) || !length(l) || !all(vapply(l, rk_is_keras_tensor, NA)))
    rk_abort(sprintf("`%s` must be a symbolic tensor (from keras_input() or a layer applied to one) or a list of them, got %s",
                     arg, rk_short_value(x)), "rkeras_type_error")
  l
}

rk_node_key <- function(op, node_index) paste0(op$id, ":", node_index)
rk_kt_node <- function(kt) kt$history$op$nodes[[kt$history$node_index + 1L]]

# Keras's map_graph(): the nodes between inputs and outputs, their depths, the layer order
# (deepest first; within a depth, order of discovery from the outputs) and execution order.
rk_functional_map_graph <- function(st) {
  in_ids <- vapply(st$inputs, function(t) t$id, 0)
  finished <- character()
  in_progress <- character()
  order_nodes <- list()     # nodes in decreasing depth order (post-order)
  op_index <- list()        # op id -> discovery index
  ops <- list()
  helper <- function(kt) {
    op <- kt$history$op
    ni <- kt$history$node_index
    key <- rk_node_key(op, ni)
    if (key %in% finished) return(invisible())
    if (key %in% in_progress)
      rk_abort(sprintf("Tensor %s from layer \"%s\" is part of a cycle.", kt$name, op$name), "rkeras_value_error")
    okey <- as.character(op$id)
    if (is.null(op_index[[okey]])) {
      op_index[[okey]] <<- length(op_index)
      ops[[okey]] <<- op
    }
    in_progress <<- c(in_progress, key)
    node <- op$nodes[[ni + 1L]]
    if (!isTRUE(op$is_input) && !(kt$id %in% in_ids)) for (t in node$inputs) helper(t)
    finished <<- c(finished, key)
    in_progress <<- setdiff(in_progress, key)
    order_nodes[[length(order_nodes) + 1L]] <<- list(op = op, node_index = ni, key = key, node = node)
  }
  for (t in st$outputs) helper(t)
  node_depth <- list()
  op_depth <- list()
  for (nd in rev(order_nodes)) {
    d <- node_depth[[nd$key]] %||% 0
    okey <- as.character(nd$op$id)
    d <- max(d, op_depth[[okey]] %||% 0)
    op_depth[[okey]] <- d
    node_depth[[nd$key]] <- d
    for (t in nd$node$inputs) {
      pkey <- rk_node_key(t$history$op, t$history$node_index)
      node_depth[[pkey]] <- max(d + 1, node_depth[[pkey]] %||% 0)
    }
  }
  for (t in st$inputs) {
    op <- t$history$op
    okey <- as.character(op$id)
    if (is.null(op_depth[[okey]])) {
      op_depth[[okey]] <- 0
      op_index[[okey]] <- -1
      ops[[okey]] <- op
      key <- rk_node_key(op, 0L)
      node_depth[[key]] <- 0
      order_nodes[[length(order_nodes) + 1L]] <- list(op = op, node_index = 0L, key = key, node = op$nodes[[1L]])
    }
  }
  # layer order
  okeys <- names(op_depth)
  depths <- unlist(op_depth[okeys])
  idx <- unlist(op_index[okeys])
  ord <- order(-depths, idx)
  st$op_states <- unname(ops[okeys[ord]])
  # nodes by depth (execution order: deepest first)
  nkeys <- names(node_depth)
  nodes_by_key <- list()
  for (nd in order_nodes) nodes_by_key[[nd$key]] <- nd
  nd_depths <- unlist(node_depth[nkeys])
  by_depth <- split(nkeys, nd_depths)
  dkeys <- sort(as.numeric(names(by_depth)), decreasing = TRUE)
  exec <- list()
  nodes_by_depth <- list()
  computable <- as.character(in_ids)
  done_ops <- character()
  for (d in dkeys) {
    ks <- by_depth[[as.character(d)]]
    nodes_by_depth[[length(nodes_by_depth) + 1L]] <- lapply(ks, function(k) nodes_by_key[[k]])
    for (k in ks) {
      nd <- nodes_by_key[[k]]
      if (is.null(nd)) next
      if (!isTRUE(nd$op$is_input)) {
        for (t in nd$node$inputs) {
          if (!(as.character(t$id) %in% computable))
            rk_abort(sprintf("Graph disconnected: cannot find parent for tensor %s at layer \"%s\". The following previous layers were accessed without issue: [%s]",
                             format(t), nd$op$name, paste0("'", done_ops, "'", collapse = ", ")),
                     "rkeras_value_error")
        }
        exec[[length(exec) + 1L]] <- nd
      }
      # an input layer only feeds the graph if its tensor is one of the model's inputs
      if (!isTRUE(nd$op$is_input)) for (t in nd$node$outputs) computable <- c(computable, as.character(t$id))
      done_ops <- c(done_ops, nd$op$name)
    }
  }
  st$exec_nodes <- exec
  st$nodes_by_depth <- nodes_by_depth
  st$node_keys <- nkeys
  nms <- vapply(st$op_states, function(o) o$name, "")
  dup <- unique(nms[duplicated(nms)])
  if (length(dup))
    rk_abort(sprintf("The name \"%s\" is used %d times in the model. All operation names should be unique.",
                     dup[1L], sum(nms == dup[1L])), "rkeras_value_error")
  for (o in st$op_states) rk_wrap_layer(o)
  invisible(st)
}

# ---- model structure helpers --------------------------------------------------------------------

rk_model_layer_states <- function(st) {
  if (identical(st$model_type, "sequential")) return(lapply(st$seq_layers, rk_state))
  st$op_states %||% list()
}

rk_model_layers <- function(st) {
  if (identical(st$model_type, "sequential")) return(st$seq_layers)
  lapply(st$op_states, function(o) o$self)
}

rk_model_is_built <- function(st) {
  if (identical(st$model_type, "sequential")) return(!is.null(st$input_layer))
  TRUE
}

rk_model_io_list <- function(st, which) {
  if (identical(st$model_type, "sequential")) {
    if (is.null(st$input_layer)) return(NULL)
    kts <- st$seq_kts
    return(if (which == "inputs") kts[1L] else kts[length(kts)])
  }
  l <- if (which == "inputs") st$inputs else st$outputs
  l
}

rk_check_model <- function(object, what = "object") {
  if (!rk_is_model(object))
    rk_abort(sprintf("`%s` must be a Keras model, got %s", what, rk_obj_kind(object)), "rkeras_type_error")
  rk_state(object)
}

rk_check_layer <- function(object, what = "object") {
  if (!rk_is_layer(object))
    rk_abort(sprintf("`%s` must be a Keras layer or model, got %s", what, rk_obj_kind(object)), "rkeras_type_error")
  rk_state(object)
}

# Builds an unbuilt Sequential for these input shapes; checks a built model's input shapes.
rk_model_build_shapes <- function(st, in_shapes) {
  if (identical(st$model_type, "sequential") && is.null(st$input_layer)) {
    if (length(in_shapes) != 1L)
      rk_abort(sprintf("Sequential model \"%s\" takes one input, got %d", st$name, length(in_shapes)),
               "rkeras_value_error")
    s <- in_shapes[[1L]]
    if (length(s)) s[1L] <- NA_integer_
    rk_sequential_set_input(st, rk_new_input_layer(s, st$dtype))
    ok <- FALSE
    on.exit(if (!ok) {
      st$input_layer <- NULL
      st$seq_kts <- NULL
    })
    rk_sequential_rebuild(st)
    ok <- TRUE
    rk_model_invalidate(st$self)
    return(invisible(st))
  }
  rk_model_check_input_shapes(st, in_shapes)
  invisible(st)
}

rk_model_check_input_shapes <- function(st, in_shapes) {
  specs <- rk_model_input_specs(st$self)
  if (length(specs) != length(in_shapes))
    rk_abort(sprintf("Model \"%s\" expects %d input(s), but it received %d input tensors.", st$name,
                     length(specs), length(in_shapes)), "rkeras_value_error")
  for (i in seq_along(specs)) {
    want <- specs[[i]]$shape
    got <- in_shapes[[i]]
    bad <- length(want) != length(got) ||
      any(!is.na(want[-1L]) & !is.na(got[-1L]) & want[-1L] != got[-1L])
    if (bad)
      rk_abort(sprintf("Input %d of model \"%s\" is incompatible with the model: expected shape %s, but received input with shape %s",
                       i - 1L, st$name, rk_shape_tuple(want), rk_shape_tuple(got)), "rkeras_shape_error")
  }
}

# Output shapes of a model applied to inputs of these shapes.
rk_model_infer <- function(st, in_shapes) {
  rk_model_build_shapes(st, in_shapes)
  if (identical(st$model_type, "sequential")) {
    shapes <- in_shapes
    for (l in st$seq_layers) shapes <- rk_layer_infer(rk_state(l), shapes)
    return(shapes)
  }
  vals <- list()
  for (i in seq_along(st$inputs)) vals[[as.character(st$inputs[[i]]$id)]] <- in_shapes[[i]]
  for (nd in st$exec_nodes) {
    ins <- lapply(nd$node$inputs, function(t) vals[[as.character(t$id)]])
    outs <- rk_layer_infer(nd$op, ins)
    for (j in seq_along(nd$node$outputs)) vals[[as.character(nd$node$outputs[[j]]$id)]] <- outs[[j]]
  }
  lapply(st$outputs, function(t) vals[[as.character(t$id)]])
}

rk_model_call_eager <- function(st, tensors, training = FALSE) {
  in_shapes <- lapply(tensors, rk_tensor_batch_shape)
  rk_model_build_shapes(st, in_shapes)
  graph <- rk_model_graph(st$self)
  seed <- if (training) rk_draw_seed() else 0
  rk_graph_forward(graph, tensors, training, seed)
}

# ---- internal interface for compile / fit ---------------------------------------------------------

# Builds an unbuilt Sequential from the shapes of the data `x_list` (list of R arrays/tensors,
# one per input); an error if that is impossible.
rk_model_ensure_built <- function(model, x_list) {
  st <- rk_check_model(model, "model")
  if (rk_model_is_built(st)) return(invisible(model))
  if (!length(st$seq_layers))
    rk_abort(sprintf("Sequential model \"%s\" has no layers: add layers before using it.", st$name),
             "rkeras_value_error")
  if (rk_is_input_list(x_list) && length(x_list) == 1L) x_list <- x_list[[1L]]
  if (rk_is_input_list(x_list))
    rk_abort(sprintf("Sequential model \"%s\" takes one input, got a list of %d", st$name, length(x_list)),
             "rkeras_value_error")
  s <- if (is_rk_tensor(x_list)) as.integer(dim(x_list)) else if (is.data.frame(x_list)) c(nrow(x_list), ncol(x_list)) else rk_r_shape(x_list)
  s[1L] <- NA_integer_
  rk_model_build_shapes(st, list(s))
  invisible(model)
}

# What building an unbuilt Sequential model from data changes, as a function that puts it back
# (NULL when there is nothing to undo: the model is built already, or nests models whose build
# state lives elsewhere). fit()/evaluate() build the model from `x` before they can check `y`; a
# call that then rejects the data must leave the model as it was.
rk_model_build_undo <- function(model) {
  st <- rk_state(model)
  if (!identical(st$model_type, "sequential") || rk_model_is_built(st)) return(NULL)
  layers <- lapply(st$seq_layers, rk_state)
  if (any(vapply(layers, function(l) isTRUE(l$is_model), logical(1)))) return(NULL)
  fields <- c("built", "build_shapes", "weights", "nodes")
  saved <- lapply(layers, function(l) mget(fields, envir = l))
  function() {
    for (i in seq_along(layers)) {
      l <- layers[[i]]
      for (f in fields) assign(f, saved[[i]][[f]], envir = l)
      rm(list = ls(l$engine_cache, all.names = TRUE), envir = l$engine_cache)
    }
    st$input_layer <- NULL
    st$seq_kts <- NULL
    rk_model_invalidate(model)
  }
}

# The model's engine graph (cached; rebuilt after any structure / trainable change).
rk_model_graph <- function(model) {
  st <- rk_check_model(model, "model")
  cache <- st$graph_cache
  if (!is.null(cache) && identical(cache$version, .rk_obj$version) && !rk_xptr_is_null(cache$graph))
    return(cache$graph)
  if (!rk_model_is_built(st))
    rk_abort(sprintf("Model \"%s\" is not built yet: give it an input shape (input_shape = or keras_input()) or call it on data first.",
                     st$name), "rkeras_value_error")
  vars <- rk_model_variables(model)
  ctx <- new.env(parent = emptyenv())
  ctx$nodes <- list()
  ctx$var_index <- structure(seq_along(vars) - 1L, names = vapply(vars, function(v) as.character(v$id), ""))
  specs <- rk_model_input_specs(model)
  ctx$num_values <- length(specs)
  ctx$shapes <- lapply(specs, function(s) s$shape)
  out_ids <- rk_trace(st, seq_along(specs) - 1L, ctx)
  g <- rk_graph_new(ctx$nodes, lapply(vars, function(v) v$tensor),
                    vapply(vars, function(v) isTRUE(v$trainable), NA) & isTRUE(st$trainable),
                    as.integer(seq_along(specs) - 1L), as.integer(out_ids), as.integer(ctx$num_values))
  st$graph_cache <- list(graph = g, version = .rk_obj$version)
  g
}

# Appends the engine nodes of applying `st` to values `in_ids`; returns the output value ids.
rk_trace <- function(st, in_ids, ctx) {
  if (isTRUE(st$is_model)) {
    if (identical(st$model_type, "sequential")) {
      ids <- in_ids
      for (l in st$seq_layers) ids <- rk_trace(rk_state(l), ids, ctx)
      return(ids)
    }
    map <- list()
    for (i in seq_along(st$inputs)) map[[as.character(st$inputs[[i]]$id)]] <- in_ids[i]
    for (nd in st$exec_nodes) {
      ids <- vapply(nd$node$inputs, function(t) map[[as.character(t$id)]], 0L)
      outs <- rk_trace(nd$op, ids, ctx)
      for (j in seq_along(nd$node$outputs)) map[[as.character(nd$node$outputs[[j]]$id)]] <- outs[j]
    }
    return(vapply(st$outputs, function(t) map[[as.character(t$id)]], 0L))
  }
  in_shapes <- ctx$shapes[in_ids + 1L]
  rk_layer_build(st, in_shapes)
  steps <- rk_layer_engine_nodes(st, in_shapes)
  ids <- as.integer(in_ids)
  for (s in steps) {
    vkeys <- vapply(st$weights[s$weights], function(v) as.character(v$id), "")
    w_idx <- unname(ctx$var_index[vkeys])
    if (anyNA(w_idx))
      rk_abort(sprintf("internal: a weight of layer \"%s\" is not among the model's weights", st$name), "rkeras_error")
    out_ids <- ctx$num_values + seq_along(s$out_shapes) - 1L
    ctx$num_values <- ctx$num_values + length(s$out_shapes)
    ctx$shapes[out_ids + 1L] <- s$out_shapes
    ctx$nodes[[length(ctx$nodes) + 1L]] <- list(layer = s$layer, inputs = ids, weights = as.integer(w_idx),
                                                outputs = as.integer(out_ids))
    ids <- as.integer(out_ids)
  }
  ids
}

# list(list(name, shape (NA batch), dtype)) per model input.
rk_model_input_specs <- function(model) {
  st <- rk_check_model(model, "model")
  if (identical(st$model_type, "sequential")) {
    if (is.null(st$input_layer)) return(list())
    il <- st$input_layer
    return(list(list(name = il$name, shape = il$config$batch_shape, dtype = il$config$dtype)))
  }
  lapply(seq_along(st$inputs), function(i) {
    t <- st$inputs[[i]]
    list(name = st$input_names[[i]], shape = t$shape, dtype = t$dtype)
  })
}

# list(list(name, shape, dtype)) per model output.
rk_model_output_specs <- function(model) {
  st <- rk_check_model(model, "model")
  if (identical(st$model_type, "sequential")) {
    if (is.null(st$input_layer)) return(list())
    kts <- st$seq_kts
    last <- kts[[length(kts)]]
    nm <- if (length(st$seq_layers)) rk_state(st$seq_layers[[length(st$seq_layers)]])$name else st$input_layer$name
    return(list(list(name = nm, shape = last$shape, dtype = last$dtype)))
  }
  lapply(seq_along(st$outputs), function(i) {
    t <- st$outputs[[i]]
    list(name = st$output_names[[i]], shape = t$shape, dtype = t$dtype)
  })
}

# The model's variables in graph weight order (= model$weights order).
rk_model_variables <- function(model) {
  st <- rk_check_model(model, "model")
  rk_layer_all_weights(st)
}

# Weight penalties for the trainer: engine regularizers and constraints by weight index (0-based).
rk_model_weight_penalties <- function(model) {
  vars <- rk_model_variables(model)
  regs <- list()
  cons <- list()
  r_cons <- list()
  for (i in seq_along(vars)) {
    v <- vars[[i]]
    if (!is.null(v$regularizer)) {
      spec <- rk_regularizer_l1l2(v$regularizer)
      regs[[length(regs) + 1L]] <- list(index = i - 1L, l1 = spec$l1, l2 = spec$l2)
    }
    if (!is.null(v$constraint)) {
      spec <- rk_constraint_spec(v$constraint)
      if (is.null(spec)) next
      if (identical(spec$kind, "r_function")) r_cons[[length(r_cons) + 1L]] <- list(index = i - 1L, fn = spec$fn)
      else cons[[length(cons) + 1L]] <- list(index = i - 1L, kind = spec$kind, attrs = spec$attrs %||% list())
    }
  }
  list(regularizers = regs, constraints = cons, r_constraints = r_cons)
}

# Drops the cached engine graph and trainer (after a structure change).
rk_model_invalidate <- function(model) {
  st <- rk_state(model)
  st$graph_cache <- NULL
  st$trainer <- NULL
  rk_bump_version()
  invisible(model)
}

# ---- layer access --------------------------------------------------------------------------------

#' Retrieve a layer of a model by name or index
#'
#' @param object A model.
#' @param name The layer's name.
#' @param index The layer's 1-based position in `object$layers` (negative counts from the end).
#' @return The layer.
#' @examples
#' model <- keras_model_sequential(input_shape = 4) |> layer_dense(2, name = "out")
#' get_layer(model, "out")
#' get_layer(model, index = 1)
#' @export
get_layer <- function(object, name = NULL, index = NULL) {
  st <- rk_check_model(object)
  layers <- rk_model_layers(st)
  if (!is.null(index)) {
    if (!is.null(name))
      rk_abort("Provide only a layer name or a layer index. Received: index=%d, name=%s.", "rkeras_value_error")
    if (!is.numeric(index) || length(index) != 1L || is.na(index) || index != round(index))
      rk_abort(sprintf("`index` must be a single integer, got %s", rk_short_value(index)), "rkeras_type_error")
    if (index == 0)
      rk_abort("Indexes for get_layer() are 1-based (0 was passed as the index)", "rkeras_value_error")
    i <- if (index < 0) length(layers) + index + 1 else index
    if (i < 1 || i > length(layers))
      rk_abort(sprintf("Was asked to retrieve layer at index %d but model only has %d layers.", as.integer(index),
                       length(layers)), "rkeras_value_error")
    return(layers[[i]])
  }
  if (!is.null(name)) {
    if (!is.character(name) || length(name) != 1L)
      rk_abort("`name` must be a single string", "rkeras_type_error")
    for (l in layers) if (identical(rk_state(l)$name, name)) return(l)
    rk_abort(sprintf("No such layer: %s. Existing layers are: [%s].", name,
                     paste0("'", vapply(layers, function(l) rk_state(l)$name, ""), "'", collapse = ", ")),
             "rkeras_value_error")
  }
  rk_abort("Provide either a layer name or layer index at `get_layer`.", "rkeras_value_error")
}

#' Remove the last layer of a Sequential model
#'
#' @param object A Sequential model (modified in place).
#' @param rebuild Whether to rebuild the model's graph after removing the layer.
#' @return The removed layer, invisibly.
#' @examples
#' model <- keras_model_sequential(input_shape = 4) |> layer_dense(3) |> layer_dense(2)
#' pop_layer(model)
#' length(model$layers)
#' @export
pop_layer <- function(object, rebuild = TRUE) {
  st <- rk_check_model(object)
  rk_check_flag(rebuild, "rebuild")
  if (!identical(st$model_type, "sequential"))
    rk_abort(sprintf("pop_layer() needs a Sequential model, got %s", class(object)[1L]), "rkeras_type_error")
  n <- length(st$seq_layers)
  if (!n) rk_abort("There are no layers in the model.", "rkeras_value_error")
  layer <- st$seq_layers[[n]]
  st$seq_layers[[n]] <- NULL
  if (!is.null(st$seq_kts)) st$seq_kts <- st$seq_kts[seq_len(n)]
  rk_model_invalidate(object)
  invisible(layer)
}

# ---- weights -----------------------------------------------------------------------------------------

#' Count the parameters of a model or layer
#'
#' @param object A built model or layer.
#' @return The number of scalars in its weights.
#' @examples
#' model <- keras_model_sequential(input_shape = 784) |>
#'   layer_dense(256) |> layer_dense(10)
#' count_params(model)  # 203530
#' @export
count_params <- function(object) {
  st <- rk_check_layer(object)
  if (!rk_layer_is_built(st))
    rk_abort(sprintf("You tried to call `count_params` on layer '%s', but the layer isn't built. You can build it manually via: `%s$build(batch_input_shape)`.",
                     st$name, st$name), "rkeras_value_error")
  rk_count_weights(rk_layer_all_weights(st))
}

rk_count_weights <- function(vars) {
  n <- sum(vapply(vars, function(v) prod(as.numeric(v$shape)), 0))
  if (n <= .Machine$integer.max) as.integer(n) else n
}

#' Get or set the weights of a model or layer
#'
#' `get_weights()` returns the weights as plain R arrays, in Keras order and shapes (a Dense
#' kernel is `input_dim x units`); `set_weights()` copies new values into them in place.
#'
#' @param object A model or layer.
#' @param trainable `NA` (all weights), `TRUE` (trainable only) or `FALSE` (non-trainable only).
#' @param weights A list of arrays with the same shapes as `get_weights(object)`.
#' @return `get_weights()`: a list of arrays. `set_weights()`: `object`, invisibly.
#' @examples
#' model <- keras_model_sequential(input_shape = 3) |> layer_dense(2)
#' w <- get_weights(model)
#' lapply(w, dim)
#' w[[1]][] <- 1
#' set_weights(model, w)
#' get_weights(model)[[1]]
#' @export
get_weights <- function(object, trainable = NA) {
  st <- rk_check_layer(object)
  if (!is.logical(trainable) || length(trainable) != 1L)
    rk_abort("`trainable` must be NA, TRUE or FALSE", "rkeras_type_error")
  vars <- if (is.na(trainable)) rk_layer_all_weights(st) else if (trainable)
    rk_layer_trainable_weights(st) else rk_layer_non_trainable_weights(st)
  lapply(vars, as.array)
}

#' @rdname get_weights
#' @export
set_weights <- function(object, weights) {
  st <- rk_check_layer(object)
  vars <- rk_layer_all_weights(st)
  if (!is.list(weights) || is.object(weights))
    rk_abort(sprintf("`weights` must be a list of arrays, got %s", rk_obj_kind(weights)), "rkeras_type_error")
  if (length(weights) != length(vars))
    rk_abort(sprintf("You called `set_weights(weights)` on layer '%s' with a weight list of length %d, but the layer was expecting %d weights.",
                     st$name, length(weights), length(vars)), "rkeras_value_error")
  owner <- rk_variable_owners(st)
  # convert and check everything first, so a bad entry leaves all weights unchanged
  vals <- lapply(seq_along(vars), function(i) {
    v <- vars[[i]]
    w <- weights[[i]]
    if (is.numeric(w) && is.null(dim(w)) && length(v$shape) == 0L && length(w) == 1L) w <- array(w)
    shp <- if (is_rk_tensor(w)) as.integer(dim(w)) else if (rk_is_variable(w)) w$shape else rk_r_shape(w)
    if (length(v$shape) == 0L && length(shp) == 1L && shp == 1L) shp <- integer(0)
    if (!identical(shp, v$shape))
      rk_abort(sprintf("Layer \"%s\" weight \"%s\" has shape %s, which is not compatible with the provided weight shape %s (weight %d of %d).",
                       owner[[as.character(v$id)]] %||% st$name, v$name, rk_shape_tuple(v$shape),
                       rk_shape_tuple(shp), i, length(vars)), "rkeras_shape_error")
    if (!is_rk_tensor(w) && !rk_is_variable(w) && length(v$shape) == 0L) w <- as.numeric(w)
    rk_variable_value_tensor(v, if (length(v$shape) == 0L && !is_rk_tensor(w)) w[1L] else w)
  })
  for (i in seq_along(vars)) rk_tensor_assign(vars[[i]]$tensor, vals[[i]])
  invisible(object)
}

# variable id -> name of the layer that owns it (for messages).
rk_variable_owners <- function(st) {
  out <- list()
  walk <- function(s) {
    for (v in s$weights) out[[as.character(v$id)]] <<- s$name
    if (isTRUE(s$is_model)) for (l in rk_model_layer_states(s)) walk(l)
  }
  walk(st)
  out
}

# ---- freezing ---------------------------------------------------------------------------------------

#' Freeze and unfreeze weights
#'
#' Freeze weights so that training does not update them (`layer$trainable <- FALSE`). With
#' `from`/`to` (layer names, 1-based indices, negative indices from the end, or layers) the
#' layers in that range are frozen and the others unfrozen; `which` selects layers by name,
#' index, layer, logical vector or predicate function. Recompile after changing this.
#'
#' @param object A model or layer (modified in place).
#' @param from,to Range of layers.
#' @param which Layers to (un)freeze, the others get the opposite setting.
#' @return `object`, invisibly.
#' @examples
#' model <- keras_model_sequential(input_shape = 4) |>
#'   layer_dense(3) |> layer_dense(2)
#' freeze_weights(model, to = 1)
#' length(model$trainable_weights)  # 2: only the second layer
#' unfreeze_weights(model)
#' length(model$trainable_weights)  # 4
#' @export
freeze_weights <- function(object, from = NULL, to = NULL, which = NULL) {
  rk_check_layer(object)
  if (!is.null(which)) {
    if (!is.null(from) || !is.null(to))
      rk_abort("both `which` and `from`/`to` can not be supplied", "rkeras_value_error")
    return(rk_apply_which_trainable(object, which, FALSE))
  }
  if (is.null(from) && is.null(to)) {
    object$trainable <- FALSE
  } else {
    object$trainable <- TRUE
    rk_apply_trainable(object, from, to, FALSE)
  }
  invisible(object)
}

#' @rdname freeze_weights
#' @export
unfreeze_weights <- function(object, from = NULL, to = NULL, which = NULL) {
  rk_check_layer(object)
  object$trainable <- TRUE
  if (!is.null(which)) {
    if (!is.null(from) || !is.null(to))
      rk_abort("both `which` and `from`/`to` can not be supplied", "rkeras_value_error")
    return(rk_apply_which_trainable(object, which, TRUE))
  }
  if (!is.null(from) || !is.null(to)) rk_apply_trainable(object, from, to, TRUE)
  invisible(object)
}

rk_layer_ref_name <- function(layers, x, arg) {
  if (rk_is_layer(x)) return(rk_state(x)$name)
  if (is.numeric(x) && length(x) == 1L) {
    i <- if (x < 0) length(layers) + x + 1 else x
    if (i < 1 || i > length(layers) || i != round(i))
      rk_abort(sprintf("`%s` = %s is not a layer index (the model has %d layers)", arg, format(x), length(layers)),
               "rkeras_value_error")
    return(rk_state(layers[[i]])$name)
  }
  if (is.character(x) && length(x) == 1L) {
    if (!x %in% vapply(layers, function(l) rk_state(l)$name, ""))
      rk_abort(sprintf("No such layer: %s", x), "rkeras_value_error")
    return(x)
  }
  rk_abort(sprintf("`%s` must be a layer name, index or layer", arg), "rkeras_type_error")
}

rk_apply_trainable <- function(object, from, to, trainable) {
  layers <- object$layers
  if (!length(layers)) return(invisible(object))
  from <- if (is.null(from)) rk_state(layers[[1L]])$name else rk_layer_ref_name(layers, from, "from")
  to <- if (is.null(to)) rk_state(layers[[length(layers)]])$name else rk_layer_ref_name(layers, to, "to")
  on <- FALSE
  for (layer in layers) {
    nm <- rk_state(layer)$name
    if (nm == from) on <- TRUE
    rk_set_trainable(rk_state(layer), if (on) trainable else !trainable)
    if (nm == to) on <- FALSE
  }
  invisible(object)
}

rk_apply_which_trainable <- function(object, which, trainable) {
  object$trainable <- TRUE
  layers <- object$layers
  nms <- vapply(layers, function(l) rk_state(l)$name, "")
  if (is.function(which) && !rk_is_layer(which)) which <- vapply(layers, which, NA, USE.NAMES = FALSE)
  if (rk_is_layer(which)) which <- list(which)
  if (is.logical(which)) which <- base::which(which)
  for (l in layers) rk_set_trainable(rk_state(l), !trainable)
  for (i in which) {
    st <- if (rk_is_layer(i)) rk_state(i) else if (is.character(i)) {
      if (!i %in% nms) rk_abort(sprintf("No such layer: %s", i), "rkeras_value_error")
      rk_state(layers[[match(i, nms)]])
    } else if (is.numeric(i)) {
      j <- if (i < 0) length(layers) + i + 1 else i
      if (j < 1 || j > length(layers)) rk_abort(sprintf("layer index %s out of range", format(i)), "rkeras_value_error")
      rk_state(layers[[j]])
    } else {
      rk_abort("`which` must be: layer names, index positions, layers, a logical vector, or a function returning a logical vector",
               "rkeras_type_error")
    }
    rk_set_trainable(st, trainable)
  }
  invisible(object)
}
