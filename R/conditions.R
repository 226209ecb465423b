# Classed conditions used by the R side of rkeras.
#
# Every error raised from R code carries the class `rkeras_error` plus a more
# specific class (`rkeras_value_error`, `rkeras_dataset_error`, ...), so that
# callers can catch them with `tryCatch(..., rkeras_value_error = ...)`. The
# C++ glue converts engine exceptions into the same family of classes.

# Build a condition object with the given classes.
rkeras_condition <- function(message, class = character(), call = NULL,
                             base = "error", ...) {
  structure(
    class = unique(c(class, paste0("rkeras_", base), base, "condition")),
    list(message = paste(message, collapse = "\n"), call = call, ...)
  )
}

# Signal a classed error. `class` is the specific class, e.g.
# "rkeras_value_error"; "rkeras_error" is always added.
rkeras_abort <- function(message, class = "rkeras_value_error",
                         call = sys.call(-1), ...) {
  stop(rkeras_condition(message, class = class, call = call,
                        base = "error", ...))
}

# Signal a classed warning ("rkeras_warning" is always added).
rkeras_warn <- function(message, class = character(), call = sys.call(-1)) {
  warning(rkeras_condition(message, class = class, call = call,
                           base = "warning"))
}

# Emit a classed message ("rkeras_message" is always added).
rkeras_inform <- function(message, class = character()) {
  msg <- paste0(paste(message, collapse = "\n"), "\n")
  message(rkeras_condition(msg, class = class, call = NULL, base = "message"))
}
