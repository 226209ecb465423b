# Callbacks: keras3's hooks called by fit(), evaluate() and predict().
#
# A callback is an environment of class
#   c(<keras3 class path>, "keras.src.callbacks.callback.Callback", "rkeras_callback")
# with `hooks` (a named list of R functions), `model` and `params` (set by fit()).
# Epoch and batch numbers given to hooks are 1-based, as in keras3. Hooks
# receive `logs` as a named list and may return a named list that is merged
# into the logs (as keras3's Callback() methods may).

rk_callback_hooks <- c(
  "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
  "on_train_batch_begin", "on_train_batch_end",
  "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
  "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end"
)

# Hooks taking (epoch or batch, logs); the others take (logs).
rk_callback_indexed_hooks <- c("on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
                               "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin",
                               "on_predict_batch_end")

rk_new_callback <- function(class, hooks, fields = list()) {
  env <- new.env(parent = emptyenv())
  env$hooks <- hooks
  env$model <- NULL
  env$params <- list()
  for (nm in names(fields)) assign(nm, fields[[nm]], envir = env)
  class(env) <- c(class, "keras.src.callbacks.callback.Callback", "rkeras_callback")
  env
}

#' @export
print.rkeras_callback <- function(x, ...) {
  hooks <- names(get("hooks", envir = x))
  cat(sprintf("<%s>%s\n", sub(".*\\.", "", class(x)[1L]),
              if (length(hooks)) paste0(" hooks: ", paste(hooks, collapse = ", ")) else ""))
  invisible(x)
}

#' Callback run at chosen points of training
#'
#' Builds a callback from R functions, as keras3's `callback_lambda()`. The
#' functions are called with these arguments (epochs and batches are
#' 1-based, as everywhere in keras3):
#' * `on_epoch_begin(epoch, logs)`, `on_epoch_end(epoch, logs)`;
#' * `on_train_begin(logs)`, `on_train_end(logs)`;
#' * `on_train_batch_begin(batch, logs)`, `on_train_batch_end(batch, logs)`;
#' * through `...`: `on_test_begin`, `on_test_end`, `on_predict_begin`,
#'   `on_predict_end` (`(logs)`) and `on_test_batch_begin/end`,
#'   `on_predict_batch_begin/end` (`(batch, logs)`).
#'
#' `logs` is a named list of the current metric values (e.g. `loss`,
#' `accuracy`, and at the end of an epoch `val_loss`, ...). A function may take
#' fewer arguments (e.g. `function(epoch)`), in which case it gets only those.
#' Batch-level hooks make fit() call back into R after every batch, which
#' costs some speed.
#'
#' @param on_epoch_begin,on_epoch_end,on_train_begin,on_train_end,on_train_batch_begin,on_train_batch_end
#'   Functions (or `NULL`) called at these points.
#' @param ... Further hooks by name (see above).
#' @return A callback object to pass in `fit(callbacks = )`.
#' @examples
#' cb <- callback_lambda(on_epoch_end = function(epoch, logs) {
#'   cat("epoch", epoch, "loss", logs$loss, "\n")
#' })
#' cb
#' @export
callback_lambda <- function(on_epoch_begin = NULL, on_epoch_end = NULL, on_train_begin = NULL,
                            on_train_end = NULL, on_train_batch_begin = NULL, on_train_batch_end = NULL, ...) {
  hooks <- c(list(on_epoch_begin = on_epoch_begin, on_epoch_end = on_epoch_end, on_train_begin = on_train_begin,
                  on_train_end = on_train_end, on_train_batch_begin = on_train_batch_begin,
                  on_train_batch_end = on_train_batch_end), list(...))
  nm <- names(hooks)
  if (is.null(nm) || any(!nzchar(nm)))
    rkeras_abort("All arguments to callback_lambda() must be named hooks such as `on_epoch_end`.",
                 class = "rkeras_value_error", call = NULL)
  unknown <- setdiff(nm, rk_callback_hooks)
  if (length(unknown))
    rkeras_abort(sprintf("Unknown callback hook(s): %s. Known hooks: %s.", paste0("`", unknown, "`", collapse = ", "),
                         paste(rk_callback_hooks, collapse = ", ")), class = "rkeras_value_error", call = NULL)
  hooks <- hooks[!vapply(hooks, is.null, logical(1))]
  for (h in names(hooks)) {
    if (!is.function(hooks[[h]]))
      rkeras_abort(sprintf("`%s` must be a function or NULL, got %s.", h, rk_describe(hooks[[h]])),
                   class = "rkeras_type_error", call = NULL)
    hooks[[h]] <- rk_adapt_hook(hooks[[h]], h %in% rk_callback_indexed_hooks)
  }
  rk_new_callback("keras.src.callbacks.lambda_callback.LambdaCallback", hooks)
}

# Wraps a user function so that it can be called as f(index, logs) or f(logs)
# whatever number of arguments it declares.
rk_adapt_hook <- function(f, indexed) {
  fmls <- names(formals(f))
  n <- if ("..." %in% fmls) Inf else length(fmls)
  if (indexed) {
    if (n >= 2) function(i, logs) f(i, logs) else if (n == 1) function(i, logs) f(i) else function(i, logs) f()
  } else {
    if (n >= 1) function(logs) f(logs) else function(logs) f()
  }
}

#' Stop training when a monitored metric has stopped improving
#'
#' As keras3's `callback_early_stopping()`, with Keras 3's rules: after each
#' epoch (from `start_from_epoch` on), the monitored value is compared with
#' the best so far; it improves if it is better by more than `min_delta`.
#' Training stops when `patience` epochs in a row brought no improvement. With
#' `restore_best_weights = TRUE` the weights of the best epoch are put back
#' when training stops early. `mode = "auto"` minimises losses and errors and
#' maximises accuracies.
#'
#' @param monitor Name of the value to watch, e.g. `"val_loss"`, `"loss"`,
#'   `"val_accuracy"`.
#' @param min_delta Smallest change that counts as an improvement.
#' @param patience Number of epochs without improvement after which training stops.
#' @param verbose `0` (silent) or `1` (print a message when stopping).
#' @param mode `"auto"`, `"min"` or `"max"`.
#' @param baseline A value the monitored quantity must beat; training stops if
#'   it does not within `patience` epochs.
#' @param restore_best_weights Whether to restore the weights of the best epoch
#'   when training stops early.
#' @param start_from_epoch Number of epochs to wait before watching (warm-up).
#' @return A callback object to pass in `fit(callbacks = )`.
#' @examples
#' callback_early_stopping(monitor = "val_loss", patience = 3, restore_best_weights = TRUE)
#' @export
callback_early_stopping <- function(monitor = "val_loss", min_delta = 0L, patience = 0L, verbose = 0L,
                                    mode = "auto", baseline = NULL, restore_best_weights = FALSE,
                                    start_from_epoch = 0L) {
  if (!is.character(monitor) || length(monitor) != 1L || is.na(monitor))
    rkeras_abort("`monitor` must be a single string such as \"val_loss\".", class = "rkeras_type_error",
                 call = NULL)
  min_delta <- abs(rk_check_number(min_delta, "min_delta"))
  patience <- as.integer(rk_check_number(patience, "patience", min = 0))
  verbose <- as.integer(rk_check_number(verbose, "verbose", min = 0))
  if (!is.character(mode) || length(mode) != 1L || !mode %in% c("auto", "min", "max")) {
    rk_warn_mode <- if (is.character(mode) && length(mode) == 1L) mode else rk_describe(mode)
    rkeras_warn(sprintf("EarlyStopping mode %s is unknown, fallback to auto mode.", rk_warn_mode))
    mode <- "auto"
  }
  baseline <- rk_check_number(baseline, "baseline", null_ok = TRUE)
  rk_check_flag(restore_best_weights, "restore_best_weights")
  start_from_epoch <- as.integer(rk_check_number(start_from_epoch, "start_from_epoch", min = 0))

  self <- rk_new_callback("keras.src.callbacks.early_stopping.EarlyStopping", list(), list(
    monitor = monitor, min_delta = min_delta, patience = patience, verbose = verbose, mode = mode,
    baseline = baseline, restore_best_weights = restore_best_weights, start_from_epoch = start_from_epoch,
    wait = 0L, stopped_epoch = 0L, best = NULL, best_weights = NULL, best_epoch = 0L, monitor_op = NULL))

  # Keras 3's _set_monitor_op(): the direction from the mode or the metric.
  set_monitor_op <- function() {
    op <- NULL
    if (self$mode == "min") op <- "less"
    else if (self$mode == "max") op <- "greater"
    else {
      metric_name <- sub("^val_", "", self$monitor)
      if (metric_name == "loss" || grepl("_loss$", metric_name)) op <- "less"
      dir <- rk_model_metric_direction(self$model, metric_name)
      if (!is.null(dir)) op <- if (dir == "up") "greater" else "less"
    }
    if (is.null(op))
      rkeras_abort(sprintf(paste0("EarlyStopping callback received monitor=%s but rkeras isn't able to ",
                                  "automatically determine whether that metric should be maximized or minimized. ",
                                  "Pass `mode='max'` in order to do early stopping based on the highest metric ",
                                  "value, or pass `mode='min'` in order to use the lowest value."), self$monitor),
                   class = "rkeras_value_error", call = NULL)
    self$monitor_op <- op
    if (op == "less") self$min_delta <- -abs(self$min_delta) else self$min_delta <- abs(self$min_delta)
    self$best <- if (op == "less") Inf else -Inf
  }
  is_improvement <- function(value, reference) {
    if (is.null(reference)) return(TRUE)
    if (self$monitor_op == "less") (value - self$min_delta) < reference else (value - self$min_delta) > reference
  }

  self$hooks <- list(
    on_train_begin = function(logs) {
      self$wait <- 0L
      self$stopped_epoch <- 0L
      self$best_weights <- NULL
      self$best_epoch <- 0L
      self$monitor_op <- NULL
      self$best <- NULL
    },
    on_epoch_end = function(epoch, logs) {
      epoch0 <- epoch - 1L  # Keras's 0-based epoch
      if (is.null(self$monitor_op)) set_monitor_op()
      current <- logs[[self$monitor]]
      if (is.null(current) || is.na(current)) {
        rkeras_warn(sprintf(paste0("Early stopping conditioned on metric `%s` which is not available. ",
                                   "Available metrics are: %s"), self$monitor, paste(names(logs), collapse = ",")))
        return(invisible(NULL))
      }
      if (epoch0 < self$start_from_epoch) return(invisible(NULL))
      if (self$restore_best_weights && is.null(self$best_weights)) self$best_weights <- get_weights(self$model)
      self$wait <- self$wait + 1L
      if (is_improvement(current, self$best)) {
        self$best <- current
        self$best_epoch <- epoch0
        if (self$restore_best_weights) self$best_weights <- get_weights(self$model)
        if (is.null(self$baseline) || is_improvement(current, self$baseline)) self$wait <- 0L
        return(invisible(NULL))
      }
      if (self$wait >= self$patience && epoch0 > 0L) {
        self$stopped_epoch <- epoch0
        rk_model_set_stop_training(self$model, TRUE)
        if (self$restore_best_weights && !is.null(self$best_weights)) {
          if (self$verbose > 0)
            cat(sprintf("Restoring model weights from the end of the best epoch: %d.\n", self$best_epoch + 1L))
          set_weights(self$model, self$best_weights)
        }
      }
      invisible(NULL)
    },
    on_train_end = function(logs) {
      if (self$stopped_epoch > 0L && self$verbose > 0)
        cat(sprintf("Epoch %d: early stopping\n", self$stopped_epoch + 1L))
    }
  )
  self
}

# ---- the callback list fit()/evaluate()/predict() drive ------------------------------------

# Checks and flattens `callbacks` (NULL, one callback or a list of them).
rk_as_callback_list <- function(callbacks) {
  if (is.null(callbacks)) return(list())
  if (inherits(callbacks, "rkeras_callback")) return(list(callbacks))
  if (!is.list(callbacks))
    rkeras_abort(sprintf("`callbacks` must be a list of callback objects, got %s.", rk_describe(callbacks)),
                 class = "rkeras_type_error", call = NULL)
  callbacks <- callbacks[!vapply(callbacks, is.null, logical(1))]
  for (i in seq_along(callbacks)) {
    if (!inherits(callbacks[[i]], "rkeras_callback"))
      rkeras_abort(sprintf("`callbacks[[%d]]` is not a callback (e.g. callback_early_stopping()), got %s.", i,
                           rk_describe(callbacks[[i]])), class = "rkeras_type_error", call = NULL)
  }
  unname(callbacks)
}

# Which hooks any callback of the list has.
rk_callbacks_have <- function(cbs, hook) {
  any(vapply(cbs, function(cb) is.function(get("hooks", envir = cb)[[hook]]), logical(1)))
}

# Gives every callback the model and params (Keras's set_model/set_params).
rk_callbacks_setup <- function(cbs, model, params) {
  for (cb in cbs) {
    assign("model", model, envir = cb)
    assign("params", params, envir = cb)
  }
  invisible(NULL)
}

# Calls `hook` of every callback in order; returns `logs` with anything the
# hooks returned (named lists) merged in.
rk_callbacks_call <- function(cbs, hook, index = NULL, logs = list()) {
  for (cb in cbs) {
    f <- get("hooks", envir = cb)[[hook]]
    if (!is.function(f)) next
    out <- if (is.null(index)) f(logs) else f(index, logs)
    if (is.list(out) && length(out) && !is.null(names(out))) logs[names(out)] <- out
  }
  logs
}

# ---- stop_training and metric directions (shared with fit) ----------------------------------

# Sets the model's stop_training flag (keras3: model$stop_training <- TRUE).
rk_model_set_stop_training <- function(model, value) {
  if (is.null(model)) return(invisible(NULL))
  assign("stop_training", isTRUE(value), envir = rk_state(model))
  invisible(NULL)
}

rk_model_stop_training <- function(model) {
  isTRUE(get0("stop_training", envir = rk_state(model), inherits = FALSE))
}

# "up" or "down" for a compiled metric's (unprefixed) name, NULL if unknown.
# Before the metrics are resolved (first fit), the direction of a known
# identifier ("accuracy", "mae", ...) is used.
rk_model_metric_direction <- function(model, name) {
  if (is.null(model)) return(NULL)
  info <- get0("compile_info", envir = rk_state(model), inherits = FALSE)
  dirs <- info$metric_directions
  if (!is.null(dirs[[name]])) return(dirs[[name]])
  if (tolower(name) %in% c("accuracy", "acc")) return("up")
  kind <- rk_metric_aliases[name]
  if (!is.na(kind)) return(rk_metric_defs[[kind]]$direction)
  NULL
}
