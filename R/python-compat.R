# keras3's Python-bridge functions, kept as informative no-ops so that old
# scripts (which install or select a Python environment first) still run.
# rkeras runs its own engine and needs no Python at all.

rk_compat_state <- new.env(parent = emptyenv())

# Tell the user, once per session and per function, that `fn` does nothing.
rk_python_noop_message <- function(fn, detail = NULL,
                                   what = "does nothing in rkeras") {
  if (isTRUE(rk_compat_state[[fn]])) return(invisible(FALSE))
  assign(fn, TRUE, envir = rk_compat_state)
  rkeras_inform(c(
    paste0("`", fn, "()` ", what, ": rkeras runs its own C++ ",
           "engine and needs no Python, TensorFlow or virtual environment."),
    detail,
    "(This message is shown once per session.)"
  ), class = "rkeras_python_compat_message")
  invisible(TRUE)
}

# For tests: forget which messages were shown.
rk_reset_python_noop_messages <- function() {
  rm(list = ls(rk_compat_state, all.names = TRUE), envir = rk_compat_state)
  invisible(NULL)
}

#' Python-environment functions kept for compatibility
#'
#' keras3 runs Keras in Python through reticulate, so scripts written for it
#' often start by installing or selecting a Python environment. rkeras needs
#' no Python: these functions accept the same arguments, do nothing, and say
#' so with a message (class `"rkeras_message"`) once per session.
#'
#' `use_backend()` is the exception: `"cpu"` and `"cuda"` select rkeras's
#' compute backend (see [config_backend()]); the Python backends
#' (`"tensorflow"`, `"jax"`, `"torch"`, ...) mean "best available".
#'
#' @param envname,extra_packages,python_version,restart_session,... Ignored
#'   (keras3's installation options).
#' @param backend For `use_backend()`: `"cpu"`, `"cuda"`, or a Keras backend
#'   name (`"tensorflow"`, `"jax"`, `"torch"`), which means "best available".
#'   Ignored by `install_keras()`.
#' @param gpu Ignored.
#' @param packages,exclude_newer,action Ignored (reticulate's `py_require()`
#'   options).
#' @param python,virtualenv,condaenv,conda,required Ignored (reticulate's
#'   options).
#' @param version Ignored.
#'
#' @return `is_keras_available()` returns `TRUE`; the others return `NULL`
#'   invisibly.
#'
#' @examples
#' install_keras()
#' use_virtualenv("r-keras")
#' is_keras_available()
#' @name python-compat
NULL

#' @rdname python-compat
#' @export
install_keras <- function(envname = "r-keras", ...,
                          extra_packages = NULL, python_version = NULL,
                          backend = c("tensorflow", "jax"), gpu = NA,
                          restart_session = TRUE) {
  rk_python_noop_message(
    "install_keras",
    "Installing the rkeras package was the whole installation."
  )
  invisible(NULL)
}

#' @rdname python-compat
#' @export
use_backend <- function(backend, gpu = NA) {
  if (!missing(backend) && is.character(backend) && length(backend) == 1L &&
      tolower(backend) %in% c("cpu", "cuda")) {
    config_set_backend(tolower(backend))
    return(invisible(NULL))
  }
  rk_python_noop_message(
    "use_backend",
    paste0("rkeras uses the best backend available (see `config_backend()`);",
           " call `use_backend(\"cpu\")` or `use_backend(\"cuda\")` to ",
           "choose one.")
  )
  invisible(NULL)
}

#' @rdname python-compat
#' @export
py_require <- function(packages = NULL, python_version = NULL, ...,
                       exclude_newer = NULL, action = c("add", "remove", "set")) {
  rk_python_noop_message("py_require")
  invisible(NULL)
}

#' @rdname python-compat
#' @export
use_python <- function(python, required = NULL) {
  rk_python_noop_message("use_python")
  invisible(NULL)
}

#' @rdname python-compat
#' @export
use_virtualenv <- function(virtualenv = NULL, required = NULL) {
  rk_python_noop_message("use_virtualenv")
  invisible(NULL)
}

#' @rdname python-compat
#' @export
use_condaenv <- function(condaenv = NULL, conda = "auto", required = NULL) {
  rk_python_noop_message("use_condaenv")
  invisible(NULL)
}

#' @rdname python-compat
#' @export
is_keras_available <- function(version = NULL) {
  rk_python_noop_message("is_keras_available", what = "is always TRUE")
  TRUE
}
