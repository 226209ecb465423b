# Optimizers with keras3's constructors, class names and defaults.
#
# An optimizer object is an environment (reference semantics, like the Python
# object keras3 hands back) of class
#   c(<keras3 class path>, "keras.src.optimizers.optimizer.Optimizer",
#     "keras.src.optimizers.base_optimizer.BaseOptimizer", "rkeras_optimizer")
# holding its kind, name and Keras config. The engine optimizer (slots,
# iteration count) is created lazily by rk_optimizer_engine() on the first
# fit(), and lives as long as the R object, so a model compiled again with
# the same optimizer object keeps its state, as in Keras.

rk_optimizer_kinds <- list(
  sgd = list(class = "keras.src.optimizers.sgd.SGD", name = "SGD"),
  adam = list(class = "keras.src.optimizers.adam.Adam", name = "adam"),
  adamw = list(class = "keras.src.optimizers.adamw.AdamW", name = "adamw"),
  rmsprop = list(class = "keras.src.optimizers.rmsprop.RMSprop", name = "rmsprop"),
  adagrad = list(class = "keras.src.optimizers.adagrad.Adagrad", name = "adagrad")
)

# Strings compile() accepts (case-insensitive, as Keras) and the kind they mean.
rk_optimizer_aliases <- c(sgd = "sgd", adam = "adam", adamw = "adamw", adam_w = "adamw",
                          rmsprop = "rmsprop", adagrad = "adagrad")

rk_null_or <- function(x, y) if (is.null(x)) y else x

# A positive (or non-negative) finite number, or NULL when allowed.
rk_check_number <- function(x, arg, null_ok = FALSE, min = -Inf, min_inclusive = TRUE, max = Inf) {
  if (is.null(x) && null_ok) return(NULL)
  if (!is.numeric(x) || length(x) != 1L || is.na(x) || !is.finite(x))
    rkeras_abort(sprintf("`%s` must be a single finite number, got %s.", arg, rk_describe(x)),
                 class = "rkeras_type_error", call = NULL)
  bad_min <- if (min_inclusive) x < min else x <= min
  if (bad_min || x > max) {
    range <- if (is.finite(max)) sprintf("in [%s, %s]", format(min), format(max))
             else sprintf("%s %s", if (min_inclusive) ">=" else ">", format(min))
    rkeras_abort(sprintf("`%s` must be %s, got %s.", arg, range, format(x)),
                 class = "rkeras_value_error", call = NULL)
  }
  as.numeric(x)
}

# A short description of an R value for error messages.
rk_describe <- function(x) {
  if (is.null(x)) return("NULL")
  if (is.function(x) && !is.object(x)) return("a function")
  if (is.object(x)) return(sprintf("an object of class <%s>", class(x)[1L]))
  if (is.atomic(x) && length(x) == 1L) return(deparse1(x))
  sprintf("a %s of length %d", typeof(x), length(x))
}

# The shared construction of every optimizer_*(): validates the common tail
# and builds the object.
rk_new_optimizer <- function(kind, hyper, weight_decay, clipnorm, clipvalue, global_clipnorm,
                             use_ema, ema_momentum, ema_overwrite_frequency, name,
                             loss_scale_factor, gradient_accumulation_steps, dots) {
  if (length(dots)) {
    nm <- names(dots)
    if (!is.null(nm) && "lr" %in% nm)
      rkeras_abort("Argument `lr` is no longer supported (Keras 3). Use `learning_rate` instead.",
                   class = "rkeras_value_error", call = NULL)
    rkeras_abort(sprintf("Unknown argument(s) to optimizer_%s(): %s.", if (kind == "adamw") "adam_w" else kind,
                         paste0("`", if (is.null(nm)) "<unnamed>" else nm, "`", collapse = ", ")),
                 class = "rkeras_value_error", call = NULL)
  }
  lr <- hyper$learning_rate
  if (inherits(lr, "rkeras_learning_rate_schedule"))
    rkeras_abort("Learning-rate schedules are not supported yet; give a number.",
                 class = "rkeras_unsupported_error", call = NULL)
  hyper$learning_rate <- rk_check_number(lr, "learning_rate", min = 0)
  weight_decay <- rk_check_number(weight_decay, "weight_decay", null_ok = TRUE, min = 0)
  clipnorm <- rk_check_number(clipnorm, "clipnorm", null_ok = TRUE, min = 0, min_inclusive = FALSE)
  clipvalue <- rk_check_number(clipvalue, "clipvalue", null_ok = TRUE, min = 0, min_inclusive = FALSE)
  global_clipnorm <- rk_check_number(global_clipnorm, "global_clipnorm", null_ok = TRUE, min = 0,
                                     min_inclusive = FALSE)
  if (!is.null(clipnorm) && !is.null(global_clipnorm))
    rkeras_abort(sprintf(paste0("Only one of `clipnorm` and `global_clipnorm` can be set. ",
                                "Received: clipnorm=%s, global_clipnorm=%s"),
                         format(clipnorm), format(global_clipnorm)),
                 class = "rkeras_value_error", call = NULL)
  if (!identical(use_ema, FALSE))
    rkeras_abort("`use_ema = TRUE` is not supported yet.", class = "rkeras_unsupported_error", call = NULL)
  if (!is.null(loss_scale_factor))
    rkeras_abort("`loss_scale_factor` is not supported yet.", class = "rkeras_unsupported_error", call = NULL)
  if (!is.null(gradient_accumulation_steps))
    rkeras_abort("`gradient_accumulation_steps` is not supported yet.", class = "rkeras_unsupported_error",
                 call = NULL)
  if (!is.character(name) || length(name) != 1L || is.na(name))
    rkeras_abort("`name` must be a single string.", class = "rkeras_type_error", call = NULL)

  env <- new.env(parent = emptyenv())
  env$kind <- kind
  env$name <- name
  env$config <- c(list(name = name, learning_rate = hyper$learning_rate, weight_decay = weight_decay,
                       clipnorm = clipnorm, global_clipnorm = global_clipnorm, clipvalue = clipvalue,
                       use_ema = FALSE, ema_momentum = ema_momentum,
                       ema_overwrite_frequency = ema_overwrite_frequency,
                       loss_scale_factor = NULL, gradient_accumulation_steps = NULL),
                  hyper[setdiff(names(hyper), "learning_rate")])
  env$engine <- NULL
  env$engine_session <- NULL
  class(env) <- c(rk_optimizer_kinds[[kind]]$class, "keras.src.optimizers.optimizer.Optimizer",
                  "keras.src.optimizers.base_optimizer.BaseOptimizer", "rkeras_optimizer")
  env
}

#' Optimizers
#'
#' Create an optimizer to pass to [compile()]. The arguments, defaults and
#' update rules follow Keras 3: `optimizer_sgd()` (with `momentum` and
#' `nesterov`), `optimizer_adam()` (with `amsgrad`), `optimizer_adam_w()`
#' (decoupled weight decay), `optimizer_rmsprop()` (with `momentum` and
#' `centered`) and `optimizer_adagrad()`. The strings `"sgd"`, `"adam"`,
#' `"adamw"`, `"rmsprop"` and `"adagrad"` given to `compile(optimizer = )`
#' mean the same optimizers with their default arguments.
#'
#' The learning rate can be read and changed at any time with
#' `opt$learning_rate` and `opt$learning_rate <- value`; `opt$iterations`
#' counts the updates done so far.
#'
#' @param learning_rate The learning rate (a non-negative number).
#' @param momentum,nesterov SGD momentum and whether to use Nesterov momentum;
#'   for RMSprop, the momentum of the update.
#' @param beta_1,beta_2 Exponential decay rates of the first and second moment
#'   estimates (Adam, AdamW).
#' @param epsilon Small constant for numerical stability.
#' @param amsgrad Whether to use the AMSGrad variant (Adam, AdamW).
#' @param rho Discounting factor of the gradient history (RMSprop).
#' @param centered If `TRUE`, gradients are normalised by their estimated
#'   variance (RMSprop).
#' @param initial_accumulator_value Starting value of the accumulators (Adagrad).
#' @param weight_decay If set, weights are decayed by this rate (decoupled, as
#'   Keras 3 does) at each update.
#' @param clipnorm If set, the gradient of each weight is clipped to this norm.
#' @param clipvalue If set, each gradient element is clipped to `[-clipvalue, clipvalue]`.
#' @param global_clipnorm If set, all gradients are clipped together so that
#'   their global norm is at most this value.
#' @param use_ema,ema_momentum,ema_overwrite_frequency Exponential moving
#'   average of the weights (accepted for compatibility; `use_ema = TRUE` is not
#'   supported yet).
#' @param name Name of the optimizer.
#' @param ... Not used; unknown arguments (including the Keras 2 `lr`) are an error.
#' @param loss_scale_factor,gradient_accumulation_steps Accepted for
#'   compatibility; only `NULL` is supported.
#'
#' @return An optimizer object (class e.g. `keras.src.optimizers.adam.Adam`).
#' @examples
#' opt <- optimizer_adam(learning_rate = 0.01)
#' opt$learning_rate
#' opt$learning_rate <- 0.005
#' opt
#' optimizer_sgd(momentum = 0.9, nesterov = TRUE)
#' @name optimizers
NULL

#' @rdname optimizers
#' @export
optimizer_sgd <- function(learning_rate = 0.01, momentum = 0, nesterov = FALSE, weight_decay = NULL,
                          clipnorm = NULL, clipvalue = NULL, global_clipnorm = NULL, use_ema = FALSE,
                          ema_momentum = 0.99, ema_overwrite_frequency = NULL, name = "SGD", ...,
                          loss_scale_factor = NULL, gradient_accumulation_steps = NULL) {
  momentum <- rk_check_number(momentum, "momentum", min = 0, max = 1)
  rk_check_flag(nesterov, "nesterov")
  rk_new_optimizer("sgd", list(learning_rate = learning_rate, momentum = momentum, nesterov = nesterov),
                   weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                   ema_overwrite_frequency, name, loss_scale_factor, gradient_accumulation_steps, list(...))
}

#' @rdname optimizers
#' @export
optimizer_adam <- function(learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-07,
                           amsgrad = FALSE, weight_decay = NULL, clipnorm = NULL, clipvalue = NULL,
                           global_clipnorm = NULL, use_ema = FALSE, ema_momentum = 0.99,
                           ema_overwrite_frequency = NULL, name = "adam", ...,
                           loss_scale_factor = NULL, gradient_accumulation_steps = NULL) {
  rk_check_flag(amsgrad, "amsgrad")
  rk_new_optimizer("adam", list(learning_rate = learning_rate,
                                beta_1 = rk_check_number(beta_1, "beta_1", min = 0, max = 1),
                                beta_2 = rk_check_number(beta_2, "beta_2", min = 0, max = 1),
                                epsilon = rk_check_number(epsilon, "epsilon", min = 0), amsgrad = amsgrad),
                   weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                   ema_overwrite_frequency, name, loss_scale_factor, gradient_accumulation_steps, list(...))
}

#' @rdname optimizers
#' @export
optimizer_adam_w <- function(learning_rate = 0.001, weight_decay = 0.004, beta_1 = 0.9, beta_2 = 0.999,
                             epsilon = 1e-07, amsgrad = FALSE, clipnorm = NULL, clipvalue = NULL,
                             global_clipnorm = NULL, use_ema = FALSE, ema_momentum = 0.99,
                             ema_overwrite_frequency = NULL, name = "adamw", ...,
                             loss_scale_factor = NULL, gradient_accumulation_steps = NULL) {
  rk_check_flag(amsgrad, "amsgrad")
  if (is.null(weight_decay))
    rkeras_abort("Argument `weight_decay` must be a float. Received: weight_decay=NULL",
                 class = "rkeras_value_error", call = NULL)
  rk_new_optimizer("adamw", list(learning_rate = learning_rate,
                                 beta_1 = rk_check_number(beta_1, "beta_1", min = 0, max = 1),
                                 beta_2 = rk_check_number(beta_2, "beta_2", min = 0, max = 1),
                                 epsilon = rk_check_number(epsilon, "epsilon", min = 0), amsgrad = amsgrad),
                   weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                   ema_overwrite_frequency, name, loss_scale_factor, gradient_accumulation_steps, list(...))
}

#' @rdname optimizers
#' @export
optimizer_rmsprop <- function(learning_rate = 0.001, rho = 0.9, momentum = 0, epsilon = 1e-07,
                              centered = FALSE, weight_decay = NULL, clipnorm = NULL, clipvalue = NULL,
                              global_clipnorm = NULL, use_ema = FALSE, ema_momentum = 0.99,
                              ema_overwrite_frequency = NULL, name = "rmsprop", ...,
                              loss_scale_factor = NULL, gradient_accumulation_steps = NULL) {
  rk_check_flag(centered, "centered")
  rk_new_optimizer("rmsprop", list(learning_rate = learning_rate,
                                   rho = rk_check_number(rho, "rho", min = 0, max = 1),
                                   momentum = rk_check_number(momentum, "momentum", min = 0, max = 1),
                                   epsilon = rk_check_number(epsilon, "epsilon", min = 0),
                                   centered = centered),
                   weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                   ema_overwrite_frequency, name, loss_scale_factor, gradient_accumulation_steps, list(...))
}

#' @rdname optimizers
#' @export
optimizer_adagrad <- function(learning_rate = 0.001, initial_accumulator_value = 0.1, epsilon = 1e-07,
                              weight_decay = NULL, clipnorm = NULL, clipvalue = NULL, global_clipnorm = NULL,
                              use_ema = FALSE, ema_momentum = 0.99, ema_overwrite_frequency = NULL,
                              name = "adagrad", ..., loss_scale_factor = NULL,
                              gradient_accumulation_steps = NULL) {
  rk_new_optimizer("adagrad", list(learning_rate = learning_rate,
                                   initial_accumulator_value = rk_check_number(
                                     initial_accumulator_value, "initial_accumulator_value", min = 0),
                                   epsilon = rk_check_number(epsilon, "epsilon", min = 0)),
                   weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                   ema_overwrite_frequency, name, loss_scale_factor, gradient_accumulation_steps, list(...))
}

# Resolves compile()'s `optimizer`: an optimizer object or a known string.
rk_get_optimizer <- function(x) {
  if (inherits(x, "rkeras_optimizer")) return(x)
  if (is.character(x) && length(x) == 1L && !is.na(x)) {
    kind <- rk_optimizer_aliases[tolower(x)]
    if (is.na(kind))
      rkeras_abort(sprintf("Could not interpret optimizer identifier: \"%s\". Known optimizers: %s.", x,
                           paste0("\"", c("sgd", "adam", "adamw", "rmsprop", "adagrad"), "\"", collapse = ", ")),
                   class = "rkeras_value_error", call = NULL)
    fn <- switch(kind, sgd = optimizer_sgd, adam = optimizer_adam, adamw = optimizer_adam_w,
                 rmsprop = optimizer_rmsprop, adagrad = optimizer_adagrad)
    return(fn())
  }
  rkeras_abort(sprintf(paste0("`optimizer` must be a string such as \"adam\" or an optimizer object ",
                              "such as optimizer_adam(), got %s."), rk_describe(x)),
               class = "rkeras_type_error", call = NULL)
}

# Fields of the optimizer environment, read without `$` dispatch.
rk_opt_field <- function(opt, name) get0(name, envir = opt, inherits = FALSE)

# The engine's description of an optimizer: list(kind, attrs). Unset (NULL)
# options of the common tail are NA, which the engine reads as "off".
rk_optimizer_spec <- function(opt) {
  cfg <- rk_opt_field(opt, "config")
  attrs <- list(learning_rate = cfg$learning_rate)
  for (k in c("weight_decay", "clipnorm", "clipvalue", "global_clipnorm"))
    attrs[[k]] <- if (is.null(cfg[[k]])) NA_real_ else as.numeric(cfg[[k]])
  hyper <- setdiff(names(cfg), c("name", "learning_rate", "weight_decay", "clipnorm", "clipvalue",
                                 "global_clipnorm", "use_ema", "ema_momentum", "ema_overwrite_frequency",
                                 "loss_scale_factor", "gradient_accumulation_steps"))
  for (k in hyper) attrs[[k]] <- cfg[[k]]
  list(kind = rk_opt_field(opt, "kind"), attrs = attrs)
}

# Identity of this R session: engine objects remembered in R objects are valid
# only in the session that made them (saveRDS()/readRDS() or a parallel
# worker gives back dead external pointers); objects record this token
# beside the pointer and compare it with identical().
rk_session_token <- new.env(parent = emptyenv())

# The live engine optimizer behind `opt`, or NULL if none was created in this session.
rk_optimizer_engine_if_any <- function(opt) {
  if (identical(rk_opt_field(opt, "engine_session"), rk_session_token)) rk_opt_field(opt, "engine") else NULL
}

# The engine optimizer behind `opt`, created on first use. Hyper-parameters come
# from the config, the learning rate as last set.
rk_optimizer_engine <- function(opt) {
  eng <- rk_optimizer_engine_if_any(opt)
  if (is.null(eng)) {
    spec <- rk_optimizer_spec(opt)
    eng <- rk_optimizer_new(spec$kind, spec$attrs)
    assign("engine", eng, envir = opt)
    assign("engine_session", rk_session_token, envir = opt)
  }
  eng
}

#' @export
`$.rkeras_optimizer` <- function(x, name) {
  eng <- rk_optimizer_engine_if_any(x)
  switch(name,
    learning_rate = ,
    lr = if (!is.null(eng)) rk_optimizer_get(eng)$learning_rate else rk_opt_field(x, "config")$learning_rate,
    iterations = if (!is.null(eng)) as.integer(rk_optimizer_get(eng)$iterations) else 0L,
    get_config = function() {
      cfg <- rk_opt_field(x, "config")
      cfg$learning_rate <- x$learning_rate
      cfg
    },
    rk_opt_field(x, name)
  )
}

#' @export
`$<-.rkeras_optimizer` <- function(x, name, value) {
  if (name %in% c("learning_rate", "lr")) {
    value <- rk_check_number(value, "learning_rate", min = 0)
    cfg <- rk_opt_field(x, "config")
    cfg$learning_rate <- value
    assign("config", cfg, envir = x)
    eng <- rk_optimizer_engine_if_any(x)
    if (!is.null(eng)) rk_optimizer_set_lr(eng, value)
  } else if (name == "name") {
    cfg <- rk_opt_field(x, "config")
    cfg$name <- value
    assign("config", cfg, envir = x)
    assign("name", value, envir = x)
  } else {
    rkeras_abort(sprintf("Optimizer attribute `%s` cannot be set; settable: `learning_rate`.", name),
                 class = "rkeras_value_error", call = NULL)
  }
  x
}

#' @export
`[[.rkeras_optimizer` <- function(x, i) `$.rkeras_optimizer`(x, i)

#' @export
print.rkeras_optimizer <- function(x, ...) {
  cfg <- x$get_config()
  shown <- cfg[!vapply(cfg, is.null, logical(1))]
  shown <- shown[setdiff(names(shown), c("name", "use_ema", "ema_momentum"))]
  vals <- vapply(shown, function(v) format(v), character(1))
  cat(sprintf("<%s> '%s'\n", sub(".*\\.", "", class(x)[1L]), rk_opt_field(x, "name")))
  if (length(vals)) cat(paste0("  ", names(vals), ": ", vals, collapse = "\n"), "\n", sep = "")
  invisible(x)
}
