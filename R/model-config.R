# Keras-style configs of layers and models (the same structure Keras's get_config() and
# serialize_keras_object() write), from_config() to rebuild objects from them, and
# clone_model() built on the two.

#' Layer and model configuration
#'
#' `get_config()` returns an object's configuration as a named list with the structure Keras
#' uses (the one saved in `.keras` files): for a layer its own settings (`name`, `trainable`,
#' `dtype`, then e.g. `units`, `activation`, initializer configs); for a Sequential model
#' `name`, `trainable`, `dtype` and `layers` (each `list(module, class_name, config,
#' registered_name, build_config)`); for a functional model also each layer's `inbound_nodes`
#' and the `input_layers` / `output_layers`. `from_config()` creates a new object (new weights)
#' from such a configuration.
#'
#' @param object A layer, model, initializer, regularizer or constraint.
#' @param config A configuration returned by `get_config()`.
#' @param custom_objects Not used (R functions are kept in the configuration itself).
#' @param ... Unused.
#' @return `get_config()`: a named list (with attribute `__class__` naming the class);
#'   `from_config()`: a new layer or model.
#' @examples
#' model <- keras_model_sequential(input_shape = 4) |> layer_dense(2)
#' cfg <- get_config(model)
#' str(cfg$layers[[2]]$config[c("name", "units")])
#' model2 <- from_config(cfg)
#' @export
get_config <- function(object, ...) UseMethod("get_config")

#' @export
get_config.default <- function(object, ...) {
  rk_abort(sprintf("get_config() does not know objects of class %s", rk_obj_kind(object)), "rkeras_type_error")
}

#' @export
get_config.rkeras_layer <- function(object, ...) {
  st <- rk_state(object)
  cfg <- rk_config_of(st)
  attr(cfg, "__class__") <- st$class_name
  cfg
}

#' @rdname get_config
#' @export
from_config <- function(config, custom_objects = NULL) {
  cls <- attr(config, "__class__", exact = TRUE)
  if (is.list(config) && !is.null(config$class_name) && !is.null(config$config) && is.null(cls)) {
    return(rk_deserialize_layer(config))
  }
  if (is.null(cls)) {
    cls <- if (!is.null(config$layers) && !is.null(config$input_layers)) "Functional" else
      if (!is.null(config$layers)) "Sequential" else NULL
  }
  if (is.null(cls))
    rk_abort("from_config(): cannot tell which class this configuration belongs to (no `__class__` attribute)",
             "rkeras_value_error")
  rk_from_config_class(cls, config)
}

rk_from_config_class <- function(cls, config) {
  switch(cls,
    Sequential = rk_sequential_from_config(config),
    Functional = , Model = rk_functional_from_config(config),
    rk_layer_from_config(cls, config, attr(config, "r_module", exact = TRUE),
                         attr(config, "r_fn", exact = TRUE), attr(config, "r_output_shape", exact = TRUE))
  )
}

# ---- layer configs -------------------------------------------------------------------------------

rk_dtype_policy <- function(dtype) {
  list(module = "keras", class_name = "DTypePolicy", config = list(name = dtype), registered_name = NULL)
}

# Initializer / regularizer / constraint objects as Keras serialises them; strings and other
# values as given.
rk_serialize_value <- function(v) {
  kinds <- c(rkeras_initializer = "keras.initializers", rkeras_regularizer = "keras.regularizers",
             rkeras_constraint = "keras.constraints")
  for (k in names(kinds)) {
    if (inherits(v, k)) {
      spec <- attr(v, "rkeras", exact = TRUE)
      cn <- spec$class_name %||% class(v)[1L]
      cfg <- get_config(v)
      attr(cfg, "__class__") <- NULL
      return(list(module = kinds[[k]], class_name = cn, config = cfg, registered_name = NULL))
    }
  }
  v
}

rk_config_of <- function(st) {
  if (isTRUE(st$is_model)) return(rk_model_config(st))
  if (isTRUE(st$is_input))
    return(c(list(batch_shape = st$config$batch_shape, dtype = st$config$dtype, sparse = FALSE,
                  name = st$name)))
  own <- st$config
  for (k in names(own)) {
    v <- own[[k]]
    if (is.character(v) && length(v) == 1L) {
      # "glorot_uniform" is written as Keras writes it: the initializer's full config
      getter <- if (grepl("_initializer$", k)) "rk_get_initializer" else if (grepl("_regularizer$", k))
        "rk_get_regularizer" else if (grepl("_constraint$", k)) "rk_get_constraint" else NULL
      if (!is.null(getter)) v <- get(getter, envir = asNamespace("rkeras"))(v)
    }
    if (!is.null(v)) own[[k]] <- rk_serialize_value(v)
  }
  cfg <- c(list(name = st$name, trainable = st$trainable, dtype = rk_dtype_policy(st$dtype)), own)
  if (!is.null(st$batch_input_shape)) cfg$batch_input_shape <- st$batch_input_shape
  cfg
}

# serialize_keras_object() of a layer: module, class_name, config, registered_name, build_config.
rk_serialize_layer <- function(st) {
  out <- list(module = if (isTRUE(st$is_model)) "keras" else "keras.layers",
              class_name = st$class_name, config = rk_config_of(st), registered_name = NULL)
  if (!isTRUE(st$is_model) && !isTRUE(st$is_input) && isTRUE(st$built) && !is.null(st$build_shapes)) {
    bs <- st$build_shapes
    out$build_config <- list(input_shape = if (length(bs) == 1L) bs[[1L]] else bs)
  }
  attr(out, "r_module") <- rk_layer_class_path_module(st)
  if (!is.null(st$r_fn)) attr(out, "r_fn") <- st$r_fn
  if (!is.null(st$r_output_shape)) attr(out, "r_output_shape") <- st$r_output_shape
  out
}

rk_layer_class_path_module <- function(st) {
  p <- rk_layer_class_path(st)
  sub(paste0("\\.", st$class_name, "$"), "", p)
}

rk_deserialize_value <- function(v) {
  if (is.list(v) && !is.null(v$class_name) && !is.null(v$module) &&
      v$module %in% c("keras.initializers", "keras.regularizers", "keras.constraints")) {
    getter <- switch(v$module, keras.initializers = "rk_get_initializer",
                     keras.regularizers = "rk_get_regularizer", keras.constraints = "rk_get_constraint")
    if (rk_has_fn(getter))
      return(get(getter, envir = asNamespace("rkeras"))(list(class_name = v$class_name, config = v$config %||% list())))
  }
  v
}

rk_layer_from_config <- function(class_name, config, module = NULL, r_fn = NULL, r_output_shape = NULL) {
  if (identical(class_name, "InputLayer")) {
    st <- rk_new_input_layer(rk_as_partial_shape(config$batch_shape %||% config$batch_input_shape, "batch_shape"),
                             config$dtype %||% "float32", config$name)
    return(st$self)
  }
  cfg <- config
  attr(cfg, "__class__") <- NULL
  dt <- cfg$dtype
  if (is.list(dt)) dt <- dt$config$name
  kwargs <- list(name = cfg$name, trainable = cfg$trainable %||% TRUE, dtype = dt,
                 batch_input_shape = cfg$batch_input_shape)
  kwargs <- kwargs[!vapply(kwargs, is.null, NA)]
  own <- cfg[setdiff(names(cfg), c("name", "trainable", "dtype", "batch_input_shape"))]
  own <- lapply(own, rk_deserialize_value)
  if (is.null(module)) module <- .rk_obj$modules[[class_name]] %||% "core"
  st <- rk_new_layer_state(class_name, own, kwargs, module = module, r_fn = r_fn, r_output_shape = r_output_shape)
  rk_wrap_layer(st)
}

# A serialised layer entry list(module, class_name, config, ...) -> a new layer or model.
rk_deserialize_layer <- function(entry) {
  cn <- entry$class_name
  cfg <- entry$config
  if (cn %in% c("Sequential")) return(rk_sequential_from_config(cfg))
  if (cn %in% c("Functional", "Model")) return(rk_functional_from_config(cfg))
  rk_layer_from_config(cn, cfg, attr(entry, "r_module", exact = TRUE), attr(entry, "r_fn", exact = TRUE),
                       attr(entry, "r_output_shape", exact = TRUE))
}

# ---- model configs ---------------------------------------------------------------------------------

rk_model_config <- function(st) {
  base <- list(name = st$name, trainable = st$trainable, dtype = rk_dtype_policy(st$dtype))
  if (identical(st$model_type, "sequential")) {
    layers <- list()
    if (!is.null(st$input_layer)) layers[[1L]] <- rk_serialize_layer(st$input_layer)
    for (l in st$seq_layers) layers[[length(layers) + 1L]] <- rk_serialize_layer(rk_state(l))
    cfg <- c(base, list(layers = layers))
    if (!is.null(st$input_layer)) cfg$build_input_shape <- st$input_layer$config$batch_shape
    return(cfg)
  }
  keys <- st$node_keys
  # node indices renumbered to the nodes inside this model (as Keras does)
  reindex <- list()
  for (o in st$op_states) {
    k <- 0L
    for (i in seq_along(o$nodes)) {
      key <- rk_node_key(o, i - 1L)
      if (key %in% keys) {
        reindex[[key]] <- k
        k <- k + 1L
      }
    }
  }
  kt_ref <- function(t) {
    op <- t$history$op
    list(op$name, reindex[[rk_node_key(op, t$history$node_index)]] %||% 0L, t$history$tensor_index)
  }
  kt_arg <- function(t) list(class_name = "__keras_tensor__",
                             config = list(shape = t$shape, dtype = t$dtype, keras_history = kt_ref(t)))
  layers <- lapply(st$op_states, function(o) {
    entry <- rk_serialize_layer(o)
    nodes <- list()
    if (!isTRUE(o$is_input)) {
      for (i in seq_along(o$nodes)) {
        if (!(rk_node_key(o, i - 1L) %in% keys)) next
        ins <- o$nodes[[i]]$inputs
        args <- if (length(ins) == 1L) list(kt_arg(ins[[1L]])) else list(lapply(ins, kt_arg))
        nodes[[length(nodes) + 1L]] <- list(args = args, kwargs = structure(list(), names = character()))
      }
    }
    a <- attributes(entry)
    entry$name <- o$name
    entry$inbound_nodes <- nodes
    for (nm in c("r_module", "r_fn", "r_output_shape")) attr(entry, nm) <- a[[nm]]
    entry
  })
  io <- function(l, nms, named) {
    refs <- lapply(l, kt_ref)
    if (named) names(refs) <- nms
    refs
  }
  c(base, list(layers = layers,
               input_layers = io(st$inputs, st$input_names, isTRUE(st$inputs_named)),
               output_layers = io(st$outputs, st$output_names, isTRUE(st$outputs_named))))
}

rk_sequential_from_config <- function(config) {
  model <- keras_model_sequential(name = config$name, trainable = config$trainable %||% TRUE)
  for (entry in config$layers) {
    layer <- rk_deserialize_layer(entry)
    rk_sequential_add(model, layer)
  }
  if (is.null(rk_state(model)$input_layer) && !is.null(config$build_input_shape))
    rk_model_build_shapes(rk_state(model), list(rk_as_partial_shape(config$build_input_shape)))
  model
}

rk_functional_from_config <- function(config) {
  created <- list()
  pending <- list()
  # tensors produced so far: "layer|node|tensor" -> KerasTensor
  produced <- list()
  node_count <- list()
  for (entry in config$layers) {
    layer <- rk_deserialize_layer(entry)
    nm <- entry$name %||% entry$config$name
    created[[nm]] <- layer
    lst <- rk_state(layer)
    if (isTRUE(lst$is_input)) {
      produced[[paste(nm, 0L, 0L, sep = "|")]] <- lst$nodes[[1L]]$outputs[[1L]]
      node_count[[nm]] <- 1L
    } else {
      node_count[[nm]] <- 0L
      for (nd in entry$inbound_nodes) pending[[length(pending) + 1L]] <- list(name = nm, node = nd)
    }
  }
  ref_key <- function(h) paste(h[[1L]], h[[2L]], h[[3L]], sep = "|")
  resolve <- function(arg) {
    if (identical(arg$class_name, "__keras_tensor__")) return(produced[[ref_key(arg$config$keras_history)]])
    lapply(arg, resolve)
  }
  ready <- function(arg) {
    if (identical(arg$class_name, "__keras_tensor__")) return(!is.null(produced[[ref_key(arg$config$keras_history)]]))
    all(vapply(arg, ready, NA))
  }
  while (length(pending)) {
    progressed <- FALSE
    rest <- list()
    for (p in pending) {
      # a layer's nodes must be made in order
      earlier <- vapply(rest, function(r) identical(r$name, p$name), NA)
      if (any(earlier) || !all(vapply(p$node$args, ready, NA))) {
        rest[[length(rest) + 1L]] <- p
        next
      }
      ins <- resolve(p$node$args[[1L]])
      if (rk_is_keras_tensor(ins)) ins <- list(ins)
      outs <- rk_call_symbolic(rk_state(created[[p$name]]), ins)
      k <- node_count[[p$name]]
      for (j in seq_along(outs)) produced[[paste(p$name, k, j - 1L, sep = "|")]] <- outs[[j]]
      node_count[[p$name]] <- k + 1L
      progressed <- TRUE
    }
    if (!progressed)
      rk_abort("from_config(): the functional configuration has inbound nodes that cannot be resolved",
               "rkeras_value_error")
    pending <- rest
  }
  getio <- function(l) {
    out <- lapply(l, function(h) produced[[ref_key(h)]])
    names(out) <- names(l)
    if (is.null(names(out)) && length(out) == 1L) out[[1L]] else out
  }
  keras_model(getio(config$input_layers), getio(config$output_layers), name = config$name,
              trainable = config$trainable %||% TRUE)
}

# ---- clone_model ------------------------------------------------------------------------------------

#' Clone a model
#'
#' Creates a new model with the same structure (layers with the same configuration and names)
#' and newly initialised weights; nothing is shared with the original.
#'
#' @param model A Sequential or functional model.
#' @param input_tensors,clone_function,call_function,recursive Not supported yet (must keep
#'   their defaults).
#' @param ... Unused.
#' @return The new model.
#' @examples
#' model <- keras_model_sequential(input_shape = 4) |> layer_dense(2)
#' model2 <- clone_model(model)
#' identical(get_weights(model)[[1]], get_weights(model2)[[1]])  # FALSE: fresh weights
#' @export
clone_model <- function(model, input_tensors = NULL, clone_function = NULL, call_function = NULL,
                        recursive = FALSE, ...) {
  rk_check_model(model, "model")
  if (!is.null(input_tensors) || !is.null(clone_function) || !is.null(call_function))
    rk_abort("clone_model(): `input_tensors`, `clone_function` and `call_function` are not supported yet",
             "rkeras_unsupported_error")
  from_config(get_config(model))
}
