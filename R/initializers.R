# Weight initializers (keras3's initializer_*()), with the Keras 3 formulas.
#
# An initializer is a callable R object, `init(shape, dtype = NULL)` -> rkeras_tensor, of
# class c(<Keras Python class path>, <Keras base class path>, "rkeras_initializer",
# "function"); its Keras class name, Keras config and (for random initializers) engine
# seed sit in the attribute "rkeras" (see rk_obj_callable()). Layers resolve their
# `*_initializer` arguments with rk_get_initializer() (strings as Keras accepts them,
# objects, Keras config lists, R functions) and draw weights with
# rk_initializer_generate().
#
# Seeds follow Keras 3: a random initializer fixes its seed when it is created (the given
# `seed`, else one drawn from R's RNG), so every call of the same object returns the same
# values and set.seed() before building a model makes its initial weights reproducible.
# The Keras config keeps the seed the user gave (NULL when unseeded), as Keras does.

# ---- shared helpers for initializer / regularizer / constraint objects ---------------

# A callable object: `fn` is its body (it receives the object itself as `self`), `spec`
# holds class_name, module, config and private fields; classes are keras3's.
rk_obj_callable <- function(fn, spec, classes) {
  f <- function(...) {
    self <- sys.function()
    attr(self, "rkeras")$call(self, ...)
  }
  # The namespace, not this frame, so that the object serialises small.
  environment(f) <- asNamespace("rkeras")
  environment(fn) <- asNamespace("rkeras")  # bodies use only their arguments
  spec$call <- fn
  attr(f, "rkeras") <- spec
  class(f) <- c(classes, "function")
  f
}

rk_obj_spec <- function(x) attr(x, "rkeras", exact = TRUE)

# Keras's serialised form of an initializer/regularizer/constraint object.
rk_obj_config <- function(x) {
  spec <- rk_obj_spec(x)
  list(module = spec$module, class_name = spec$class_name, config = spec$config,
       registered_name = NULL)
}

rk_obj_get_config <- function(object) {
  spec <- rk_obj_spec(object)
  structure(spec$config, "__class__" = spec$class_name)
}

# from_config() for any of the three kinds: the object, or NULL when `class_name` is not an
# initializer, regularizer or constraint class (Keras's class names and aliases).
rk_keras_object_from_config <- function(class_name, config = list()) {
  config <- unclass(config)
  attr(config, "__class__") <- NULL
  x <- list(class_name = class_name, config = config)
  if (!is.na(rk_initializer_names[class_name])) return(rk_get_initializer(x))
  if (!is.na(rk_regularizer_names[class_name])) return(rk_get_regularizer(x))
  if (!is.na(rk_constraint_names[class_name])) return(rk_get_constraint(x))
  NULL
}

rk_obj_dollar <- function(x, name, rebuild) {
  spec <- rk_obj_spec(x)
  switch(name,
    get_config = function() spec$config,
    from_config = function(config) rebuild(spec$class_name, config),
    clone = function() rebuild(spec$class_name, spec$config),
    class_name = spec$class_name,
    if (name %in% names(spec$config)) spec$config[[name]] else NULL
  )
}

rk_obj_format_value <- function(v) {
  if (is.null(v)) return("NULL")
  if (is.character(v)) return(paste0("\"", v, "\"", collapse = ", "))
  if (length(v) > 6L) return(sprintf("<%s of length %d>", typeof(v), length(v)))
  paste(format(v), collapse = ", ")
}

rk_obj_print <- function(x, what) {
  spec <- rk_obj_spec(x)
  cat(sprintf("<%s object>\n", class(x)[1L]))
  cfg <- spec$config
  if (length(cfg)) {
    vals <- vapply(names(cfg), function(n) sprintf("%s = %s", n, rk_obj_format_value(cfg[[n]])), "")
    cat(sprintf(" %s %s(%s)\n", what, spec$class_name, paste(vals, collapse = ", ")))
  } else {
    cat(sprintf(" %s %s()\n", what, spec$class_name))
  }
  invisible(x)
}

rk_obj_number <- function(x, arg, min = -Inf, strict_min = FALSE, finite = TRUE) {
  ok <- is.numeric(x) && length(x) == 1L && !is.na(x) && (!finite || is.finite(x)) &&
    (if (strict_min) x > min else x >= min)
  if (!ok) {
    what <- if (is.finite(min)) sprintf("a single number %s %s", if (strict_min) ">" else ">=", format(min))
            else "a single finite number"
    rk_abort(sprintf("`%s` must be %s, got %s", arg, what, rk_obj_deparse(x)), "rkeras_value_error")
  }
  as.numeric(x)
}

rk_obj_choice <- function(x, arg, choices) {
  if (!is.character(x) || length(x) != 1L || is.na(x) || !x %in% choices)
    rk_abort(sprintf("`%s` must be one of %s, got %s", arg, paste0("\"", choices, "\"", collapse = ", "),
                     rk_obj_deparse(x)), "rkeras_value_error")
  x
}

rk_obj_deparse <- function(x) {
  if (is.function(x)) return("a function")
  s <- deparse1(x)
  if (nchar(s) > 60L) s <- paste0(substr(s, 1L, 57L), "...")
  s
}

# A config list given as list(class_name = , config = ) (module / registered_name optional).
rk_obj_is_config <- function(x) {
  is.list(x) && !is.object(x) && is.character(x$class_name) && length(x$class_name) == 1L
}

# ---- seeds -----------------------------------------------------------------------------

# The user's seed as Keras keeps it in the config (integer), validated.
rk_init_user_seed <- function(seed) {
  if (is.null(seed)) return(NULL)
  if (!is.numeric(seed) || length(seed) != 1L || is.na(seed) || seed < 0 || seed != trunc(seed) ||
      seed > .Machine$integer.max)
    rk_abort(sprintf("`seed` must be NULL or a single non-negative whole number (at most %d), got %s",
                     .Machine$integer.max, rk_obj_deparse(seed)), "rkeras_value_error")
  as.integer(seed)
}

# The engine seed of a new random initializer: the user's, else one from R's RNG.
rk_init_engine_seed <- function(user_seed) {
  if (is.null(user_seed)) rk_seed_arg(NULL) else as.numeric(user_seed)
}

# Deterministic follow-up seeds (truncated-normal redraws) from an engine seed.
rk_derived_seed <- function(seed, k) (seed * 69069 + k * 1013904223 + 1) %% 4294967296

# ---- construction ----------------------------------------------------------------------

rk_initializer_modules <- c(
  Constant = "constant_initializers", Zeros = "constant_initializers", Ones = "constant_initializers",
  Identity = "constant_initializers", STFT = "constant_initializers",
  RandomNormal = "random_initializers", RandomUniform = "random_initializers",
  TruncatedNormal = "random_initializers", VarianceScaling = "random_initializers",
  GlorotNormal = "random_initializers", GlorotUniform = "random_initializers",
  HeNormal = "random_initializers", HeUniform = "random_initializers",
  LecunNormal = "random_initializers", LecunUniform = "random_initializers",
  Orthogonal = "random_initializers"
)

# The resolved parameters used by the generator: VarianceScaling subclasses expand to
# their scale / mode / distribution.
rk_variance_scaling_presets <- list(
  GlorotNormal = list(scale = 1, mode = "fan_avg", distribution = "truncated_normal"),
  GlorotUniform = list(scale = 1, mode = "fan_avg", distribution = "uniform"),
  HeNormal = list(scale = 2, mode = "fan_in", distribution = "truncated_normal"),
  HeUniform = list(scale = 2, mode = "fan_in", distribution = "uniform"),
  LecunNormal = list(scale = 1, mode = "fan_in", distribution = "truncated_normal"),
  LecunUniform = list(scale = 1, mode = "fan_in", distribution = "uniform")
)

rk_new_initializer <- function(class_name, config, params = config, seed = NULL) {
  spec <- list(
    module = "keras.initializers", class_name = class_name, config = config, params = params,
    seed = seed  # engine seed; NULL for non-random initializers
  )
  classes <- c(sprintf("keras.src.initializers.%s.%s", rk_initializer_modules[[class_name]], class_name),
               "keras.src.initializers.initializer.Initializer", "rkeras_initializer")
  rk_obj_callable(function(self, shape, dtype = NULL) rk_initializer_generate(self, shape, dtype), spec, classes)
}

rk_new_random_initializer <- function(class_name, config_rest, seed, params = NULL) {
  user_seed <- rk_init_user_seed(seed)
  config <- c(list(seed = user_seed), config_rest)
  if (is.null(params)) params <- config_rest
  rk_new_initializer(class_name, config, params, seed = rk_init_engine_seed(user_seed))
}

# Builds an initializer from its Keras class name and config (from_config).
rk_initializer_from_config <- function(class_name, config = list()) {
  if (!is.list(config)) rk_abort("an initializer config must be a list", "rkeras_type_error")
  ctor <- rk_initializer_constructors[[class_name]]
  if (is.null(ctor)) rk_unknown_initializer(class_name)
  known <- names(formals(ctor))
  extra <- setdiff(names(config), known)
  if (length(extra))
    rk_abort(sprintf("unknown config field(s) %s for initializer %s; expected %s",
                     paste0("`", extra, "`", collapse = ", "), class_name,
                     if (length(known)) paste0("`", known, "`", collapse = ", ") else "none"),
             "rkeras_value_error")
  do.call(ctor, config)
}

# ---- exported constructors -------------------------------------------------------------

#' Initializer that generates tensors with constant values
#'
#' Every element is `value`. Only scalar values are allowed.
#'
#' An initializer is a function: call it with a `shape` (and optionally a `dtype`) to
#' get a tensor, or pass it to a layer's `kernel_initializer`, `bias_initializer`, ...
#' argument. Layers also accept the Keras names as strings (`"zeros"`, `"Zeros"`,
#' `"glorot_uniform"`, ...).
#'
#' @param value A numeric scalar.
#' @return An initializer: a function `(shape, dtype = NULL)` returning an `rkeras_tensor`
#'   of that shape (`dtype` `NULL` means [config_floatx()]).
#' @family constant initializers
#' @family initializers
#' @examples
#' init <- initializer_constant(10)
#' as.array(init(shape = c(2, 2)))
#' @export
initializer_constant <- function(value = 0) {
  value <- rk_obj_number(value, "value")
  rk_new_initializer("Constant", list(value = value))
}

#' Initializer that generates tensors initialized to 0
#'
#' @inherit initializer_constant return
#' @family constant initializers
#' @family initializers
#' @examples
#' init <- initializer_zeros()
#' as.array(init(shape = c(2, 2)))
#' @export
initializer_zeros <- function() rk_new_initializer("Zeros", structure(list(), names = character()))

#' Initializer that generates tensors initialized to 1
#'
#' @inherit initializer_constant return
#' @family constant initializers
#' @family initializers
#' @examples
#' init <- initializer_ones()
#' as.array(init(shape = c(2, 2)))
#' @export
initializer_ones <- function() rk_new_initializer("Ones", structure(list(), names = character()))

#' Initializer that generates the identity matrix
#'
#' Only usable for 2D shapes; a non-square shape `(n, m)` gives ones on the main
#' diagonal and zeros elsewhere.
#'
#' @param gain Multiplicative factor applied to the identity matrix.
#' @inherit initializer_constant return
#' @family constant initializers
#' @family initializers
#' @examples
#' init <- initializer_identity(gain = 2)
#' as.array(init(shape = c(3, 3)))
#' @export
initializer_identity <- function(gain = 1) {
  gain <- rk_obj_number(gain, "gain")
  rk_new_initializer("Identity", list(gain = gain))
}

#' Random normal initializer
#'
#' Draws samples from a normal distribution with the given mean and standard deviation.
#'
#' @param mean A numeric scalar: the mean of the random values.
#' @param stddev A numeric scalar: the standard deviation of the random values.
#' @param seed `NULL` or a non-negative integer. As in Keras 3, an initializer fixes its
#'   seed when it is created (a `NULL` seed is drawn from R's random number generator, so
#'   [set.seed()] makes it reproducible): calling the same initializer object twice
#'   gives the same values.
#' @inherit initializer_constant return
#' @family random initializers
#' @family initializers
#' @examples
#' init <- initializer_random_normal(mean = 0, stddev = 1, seed = 1)
#' as.array(init(shape = c(2, 3)))
#' @export
initializer_random_normal <- function(mean = 0, stddev = 0.05, seed = NULL) {
  mean <- rk_obj_number(mean, "mean")
  stddev <- rk_obj_number(stddev, "stddev", min = 0)
  rk_new_random_initializer("RandomNormal", list(mean = mean, stddev = stddev), seed)
}

#' Random uniform initializer
#'
#' Draws samples from a uniform distribution on `[minval, maxval)`.
#'
#' @param minval A numeric scalar: the lower bound (inclusive).
#' @param maxval A numeric scalar: the upper bound (exclusive).
#' @inheritParams initializer_random_normal
#' @inherit initializer_constant return
#' @family random initializers
#' @family initializers
#' @examples
#' init <- initializer_random_uniform(minval = 0, maxval = 1, seed = 1)
#' as.array(init(shape = c(2, 3)))
#' @export
initializer_random_uniform <- function(minval = -0.05, maxval = 0.05, seed = NULL) {
  minval <- rk_obj_number(minval, "minval")
  maxval <- rk_obj_number(maxval, "maxval")
  if (maxval < minval)
    rk_abort(sprintf("`maxval` (%s) must not be smaller than `minval` (%s)", format(maxval), format(minval)),
             "rkeras_value_error")
  rk_new_random_initializer("RandomUniform", list(minval = minval, maxval = maxval), seed)
}

#' Truncated normal initializer
#'
#' Like [initializer_random_normal()], except that values more than two standard
#' deviations from the mean are discarded and drawn again.
#'
#' @inheritParams initializer_random_normal
#' @inherit initializer_constant return
#' @family random initializers
#' @family initializers
#' @examples
#' init <- initializer_truncated_normal(mean = 0, stddev = 1, seed = 1)
#' range(as.array(init(shape = c(100, 10))))  # within [-2, 2]
#' @export
initializer_truncated_normal <- function(mean = 0, stddev = 0.05, seed = NULL) {
  mean <- rk_obj_number(mean, "mean")
  stddev <- rk_obj_number(stddev, "stddev", min = 0)
  rk_new_random_initializer("TruncatedNormal", list(mean = mean, stddev = stddev), seed)
}

#' Initializer that adapts its scale to the shape of its input tensors
#'
#' With `distribution = "truncated_normal"` or `"untruncated_normal"`, samples are drawn
#' from a truncated or untruncated normal distribution with mean zero and standard
#' deviation (after truncation, if used) `stddev = sqrt(scale / n)`, where `n` is the
#' number of input units of the weight (`mode = "fan_in"`), of output units
#' (`"fan_out"`) or their average (`"fan_avg"`). With `distribution = "uniform"`,
#' samples are drawn from a uniform distribution within `[-limit, limit]`, where
#' `limit = sqrt(3 * scale / n)`.
#'
#' The numbers of units follow Keras: for a 2D shape `(in, out)` they are `in` and `out`;
#' for a convolution kernel `(..., in, out)` both are multiplied by the receptive field
#' size (the product of the leading dimensions); a 1D shape `(n)` has `n` of each.
#'
#' @param scale Scaling factor (a positive number).
#' @param mode One of `"fan_in"`, `"fan_out"`, `"fan_avg"`.
#' @param distribution One of `"truncated_normal"`, `"untruncated_normal"`, `"uniform"`
#'   (`"normal"` means `"truncated_normal"`).
#' @inheritParams initializer_random_normal
#' @inherit initializer_constant return
#' @family random initializers
#' @family initializers
#' @examples
#' init <- initializer_variance_scaling(scale = 0.1, mode = "fan_in",
#'                                      distribution = "uniform", seed = 1)
#' as.array(init(shape = c(2, 2)))
#' @export
initializer_variance_scaling <- function(scale = 1, mode = "fan_in", distribution = "truncated_normal",
                                         seed = NULL) {
  scale <- rk_obj_number(scale, "scale", min = 0, strict_min = TRUE)
  mode <- rk_obj_choice(mode, "mode", c("fan_in", "fan_out", "fan_avg"))
  if (is.character(distribution) && length(distribution) == 1L && !is.na(distribution)) {
    distribution <- tolower(distribution)
    if (distribution == "normal") distribution <- "truncated_normal"
  }
  distribution <- rk_obj_choice(distribution, "distribution",
                                         c("truncated_normal", "untruncated_normal", "uniform"))
  rk_new_random_initializer("VarianceScaling",
                            list(scale = scale, mode = mode, distribution = distribution), seed)
}

#' The Glorot normal initializer, also called Xavier normal initializer
#'
#' Draws samples from a truncated normal distribution centred on 0 with
#' `stddev = sqrt(2 / (fan_in + fan_out))`, where `fan_in` and `fan_out` are the
#' numbers of input and output units of the weight (see
#' [initializer_variance_scaling()]).
#'
#' @inheritParams initializer_random_normal
#' @inherit initializer_constant return
#' @references Glorot and Bengio (2010), <http://proceedings.mlr.press/v9/glorot10a.html>
#' @family random initializers
#' @family initializers
#' @examples
#' init <- initializer_glorot_normal(seed = 1)
#' as.array(init(shape = c(2, 2)))
#' @export
initializer_glorot_normal <- function(seed = NULL) rk_preset_initializer("GlorotNormal", seed)

#' The Glorot uniform initializer, also called Xavier uniform initializer
#'
#' Draws samples from a uniform distribution within `[-limit, limit]`, where
#' `limit = sqrt(6 / (fan_in + fan_out))` (see [initializer_variance_scaling()] for the
#' numbers of units). It is the default kernel initializer of most Keras layers.
#'
#' @inheritParams initializer_random_normal
#' @inherit initializer_constant return
#' @references Glorot and Bengio (2010), <http://proceedings.mlr.press/v9/glorot10a.html>
#' @family random initializers
#' @family initializers
#' @examples
#' init <- initializer_glorot_uniform(seed = 1)
#' as.array(init(shape = c(2, 2)))
#' @export
initializer_glorot_uniform <- function(seed = NULL) rk_preset_initializer("GlorotUniform", seed)

#' He normal initializer
#'
#' Draws samples from a truncated normal distribution centred on 0 with
#' `stddev = sqrt(2 / fan_in)` (see [initializer_variance_scaling()]).
#'
#' @inheritParams initializer_random_normal
#' @inherit initializer_constant return
#' @references He et al. (2015), <https://arxiv.org/abs/1502.01852>
#' @family random initializers
#' @family initializers
#' @examples
#' init <- initializer_he_normal(seed = 1)
#' as.array(init(shape = c(2, 2)))
#' @export
initializer_he_normal <- function(seed = NULL) rk_preset_initializer("HeNormal", seed)

#' He uniform variance scaling initializer
#'
#' Draws samples from a uniform distribution within `[-limit, limit]`, where
#' `limit = sqrt(6 / fan_in)` (see [initializer_variance_scaling()]).
#'
#' @inheritParams initializer_random_normal
#' @inherit initializer_constant return
#' @references He et al. (2015), <https://arxiv.org/abs/1502.01852>
#' @family random initializers
#' @family initializers
#' @examples
#' init <- initializer_he_uniform(seed = 1)
#' as.array(init(shape = c(2, 2)))
#' @export
initializer_he_uniform <- function(seed = NULL) rk_preset_initializer("HeUniform", seed)

#' Lecun normal initializer
#'
#' Draws samples from a truncated normal distribution centred on 0 with
#' `stddev = sqrt(1 / fan_in)` (see [initializer_variance_scaling()]).
#'
#' @inheritParams initializer_random_normal
#' @inherit initializer_constant return
#' @references Klambauer et al. (2017), <https://arxiv.org/abs/1706.02515>
#' @family random initializers
#' @family initializers
#' @examples
#' init <- initializer_lecun_normal(seed = 1)
#' as.array(init(shape = c(2, 2)))
#' @export
initializer_lecun_normal <- function(seed = NULL) rk_preset_initializer("LecunNormal", seed)

#' Lecun uniform initializer
#'
#' Draws samples from a uniform distribution within `[-limit, limit]`, where
#' `limit = sqrt(3 / fan_in)` (see [initializer_variance_scaling()]).
#'
#' @inheritParams initializer_random_normal
#' @inherit initializer_constant return
#' @references Klambauer et al. (2017), <https://arxiv.org/abs/1706.02515>
#' @family random initializers
#' @family initializers
#' @examples
#' init <- initializer_lecun_uniform(seed = 1)
#' as.array(init(shape = c(2, 2)))
#' @export
initializer_lecun_uniform <- function(seed = NULL) rk_preset_initializer("LecunUniform", seed)

rk_preset_initializer <- function(class_name, seed) {
  rk_new_random_initializer(class_name, list(), seed, params = rk_variance_scaling_presets[[class_name]])
}

#' Initializer that generates an orthogonal matrix
#'
#' For a 2D shape, the result is an orthogonal matrix obtained from the QR
#' decomposition of a matrix of normal random numbers (with the signs of `R`'s diagonal
#' folded into `Q`, so the distribution is uniform). If the matrix has fewer rows than
#' columns, its rows are orthonormal; otherwise its columns are.
#'
#' For a shape of more than two dimensions, a matrix of shape
#' `(shape[1] * ... * shape[n - 1], shape[n])` is initialized and then reshaped
#' (row-major, as Keras) to the requested shape.
#'
#' @param gain Multiplicative factor applied to the orthogonal matrix.
#' @inheritParams initializer_random_normal
#' @inherit initializer_constant return
#' @references Saxe et al. (2014), <https://openreview.net/forum?id=_wzZwKpTDF_9C>
#' @family random initializers
#' @family initializers
#' @examples
#' init <- initializer_orthogonal(seed = 1)
#' q <- as.array(init(shape = c(4, 3), dtype = "float64"))
#' round(crossprod(q), 10)  # identity: orthonormal columns
#' @export
initializer_orthogonal <- function(gain = 1, seed = NULL) {
  gain <- rk_obj_number(gain, "gain")
  rk_new_random_initializer("Orthogonal", list(gain = gain), seed)
}

#' Initializer of Conv kernels for Short-term Fourier Transformation (STFT)
#'
#' Generates the real (cosine) or imaginary (sine) part of a discrete Fourier basis for
#' a kernel of shape `(frame_length, input_channels, fft_bins)`, where `fft_bins` is
#' `fft_length %/% 2 + 1`: element `[t, c, f]` is `cos(-2 * pi * (t - 1) * (f - 1) / n)`
#' (or `sin(...)`), with `n = 2 * (fft_bins - 1)`, multiplied by the window value at
#' time `t` and divided by the window's scaling. It is primarily intended for STFT
#' spectrogram layers.
#'
#' Windows are computed as `scipy.signal.get_window()` does (which Keras uses); the
#' names supported here are `"hann"`, `"hamming"`, `"blackman"`, `"bartlett"`,
#' `"triang"` and `"boxcar"` (with SciPy's aliases such as `"hanning"` and `"rect"`).
#' Other SciPy window names give an error of class `rkeras_unsupported_error`; pass the
#' window values as a numeric vector instead.
#'
#' @param side `"real"` or `"imag"`: whether the kernel computes the real or the
#'   imaginary part of the output.
#' @param window The name of a window function, a numeric vector of window values (of
#'   length `frame_length`), or `NULL` for no windowing.
#' @param scaling `"density"` (divide by the window's L2 norm), `"spectrum"` (divide by
#'   its L1 norm), or `NULL` for no scaling.
#' @param periodic If `TRUE`, the window is periodic (as for spectral analysis) rather
#'   than symmetric.
#' @inherit initializer_constant return
#' @family constant initializers
#' @family initializers
#' @examples
#' init <- initializer_stft(side = "real", window = "hann")
#' k <- as.array(init(shape = c(8, 1, 5)))
#' dim(k)
#' @export
initializer_stft <- function(side = "real", window = "hann", scaling = "density", periodic = FALSE) {
  side <- rk_obj_choice(side, "side", c("real", "imag"))
  if (!is.null(scaling)) scaling <- rk_obj_choice(scaling, "scaling", c("density", "spectrum"))
  rk_check_flag(periodic, "periodic")
  if (is.character(window)) {
    if (length(window) != 1L || is.na(window))
      rk_abort("`window` must be a single window name, a numeric vector or NULL", "rkeras_value_error")
    rk_window_kind(window)  # errors now for unknown names, as Keras validates at construction
  } else if (!is.null(window)) {
    if (!is.numeric(window) || length(window) < 1L || anyNA(window) || any(!is.finite(window)))
      rk_abort(sprintf("`window` must be a window name, a numeric vector of finite values or NULL, got %s",
                       rk_obj_deparse(window)), "rkeras_value_error")
    window <- as.numeric(window)
  }
  cfg <- list(side = side, window = window, periodic = periodic, scaling = scaling)
  rk_new_initializer("STFT", cfg)
}

rk_initializer_constructors <- list(
  Constant = initializer_constant, Zeros = initializer_zeros, Ones = initializer_ones,
  Identity = initializer_identity, STFT = initializer_stft,
  RandomNormal = initializer_random_normal, RandomUniform = initializer_random_uniform,
  TruncatedNormal = initializer_truncated_normal, VarianceScaling = initializer_variance_scaling,
  GlorotNormal = initializer_glorot_normal, GlorotUniform = initializer_glorot_uniform,
  HeNormal = initializer_he_normal, HeUniform = initializer_he_uniform,
  LecunNormal = initializer_lecun_normal, LecunUniform = initializer_lecun_uniform,
  Orthogonal = initializer_orthogonal
)

# ---- resolution ------------------------------------------------------------------------

# Keras's identifier table: class names, their snake_case forms and the aliases.
rk_initializer_names <- local({
  snake <- c(Constant = "constant", Zeros = "zeros", Ones = "ones", Identity = "identity", STFT = "stft",
             RandomNormal = "random_normal", RandomUniform = "random_uniform",
             TruncatedNormal = "truncated_normal", VarianceScaling = "variance_scaling",
             GlorotNormal = "glorot_normal", GlorotUniform = "glorot_uniform",
             HeNormal = "he_normal", HeUniform = "he_uniform", LecunNormal = "lecun_normal",
             LecunUniform = "lecun_uniform", Orthogonal = "orthogonal")
  table <- c(stats::setNames(names(snake), names(snake)), stats::setNames(names(snake), snake))
  c(table, c(IdentityInitializer = "Identity", normal = "RandomNormal", one = "Ones",
             STFTInitializer = "STFT", OrthogonalInitializer = "Orthogonal", uniform = "RandomUniform",
             zero = "Zeros"))
})

rk_unknown_initializer <- function(name) {
  rk_abort(sprintf("unknown initializer \"%s\"; expected one of %s (names are case-sensitive)", name,
                   paste0("\"", names(rk_initializer_names), "\"", collapse = ", ")),
           "rkeras_value_error")
}

# NULL -> NULL; a name, an initializer object, a Keras config list or an R function
# `function(shape, dtype)` -> an initializer (R functions are returned as they are).
rk_get_initializer <- function(x) {
  if (is.null(x)) return(NULL)
  if (inherits(x, "rkeras_initializer")) return(x)
  if (is.character(x)) {
    if (length(x) != 1L || is.na(x))
      rk_abort(sprintf("an initializer name must be a single string, got %s", rk_obj_deparse(x)),
               "rkeras_value_error")
    class_name <- rk_initializer_names[x]
    if (is.na(class_name)) rk_unknown_initializer(x)
    return(rk_initializer_constructors[[class_name]]())
  }
  if (rk_obj_is_config(x)) {
    class_name <- rk_initializer_names[x$class_name]
    if (is.na(class_name)) rk_unknown_initializer(x$class_name)
    return(rk_initializer_from_config(unname(class_name), if (is.null(x$config)) list() else x$config))
  }
  if (is.function(x) && !inherits(x, c("rkeras_regularizer", "rkeras_constraint"))) return(x)
  rk_abort(sprintf("could not interpret initializer identifier: expected a name such as \"glorot_uniform\", an initializer object or a function(shape, dtype), got %s",
                   rk_obj_kind(x)), "rkeras_type_error")
}

# ---- generation ------------------------------------------------------------------------

rk_init_shape <- function(shape) {
  if (is_rk_tensor(shape)) shape <- as.array(shape)
  if (is.list(shape) && !is.object(shape)) {
    if (any(vapply(shape, function(s) length(s) != 1L, TRUE)))
      rk_abort(sprintf("`shape` must be a vector of whole numbers, got %s", rk_obj_deparse(shape)),
               "rkeras_value_error")
    shape <- unlist(shape)
  }
  if (is.null(shape)) return(integer())
  if (!is.numeric(shape) || anyNA(shape) || any(shape < 0) || any(shape != trunc(shape)))
    rk_abort(sprintf("`shape` must be a vector of non-negative whole numbers without NA, got %s",
                     rk_obj_deparse(shape)), "rkeras_value_error")
  as.integer(shape)
}

# Keras's fan computation (keras.src.initializers.random_initializers.compute_fans).
rk_compute_fans <- function(shape) {
  r <- length(shape)
  if (r < 1L) return(c(fan_in = 1, fan_out = 1))
  if (r == 1L) return(c(fan_in = shape[1L], fan_out = shape[1L]))
  if (r == 2L) return(c(fan_in = shape[1L], fan_out = shape[2L]))
  receptive <- prod(as.numeric(shape[seq_len(r - 2L)]))
  c(fan_in = shape[r - 1L] * receptive, fan_out = shape[r] * receptive)
}

rk_init_float_dtype <- function(dtype, class_name) {
  if (!dtype %in% c("float32", "float64"))
    rk_abort(sprintf("initializer %s draws random numbers and needs a floating dtype (\"float32\" or \"float64\"), got \"%s\"",
                     class_name, dtype), "rkeras_type_error")
}

# Values of an initializer for a weight of the given shape, as an rkeras_tensor.
# `init` is anything rk_get_initializer() accepts; `dtype` NULL means config_floatx().
rk_initializer_generate <- function(init, shape, dtype = "float32") {
  init <- rk_get_initializer(init)
  if (is.null(init)) rk_abort("no initializer given (NULL)", "rkeras_value_error")
  shape <- rk_init_shape(shape)
  dtype <- if (is.null(dtype)) config_floatx() else rk_check_dtype(dtype)
  if (!inherits(init, "rkeras_initializer")) return(rk_initializer_call_function(init, shape, dtype))
  spec <- rk_obj_spec(init)
  p <- spec$params
  cls <- spec$class_name
  switch(cls,
    Zeros = rk_zeros(shape, dtype),
    Ones = rk_ones(shape, dtype),
    Constant = rk_full(shape, p$value, dtype),
    Identity = rk_identity_values(shape, p$gain, dtype),
    STFT = rk_stft_values(shape, p, dtype),
    RandomNormal = {
      rk_init_float_dtype(dtype, cls)
      rk_random_normal(shape, p$mean, p$stddev, dtype, seed = spec$seed)
    },
    RandomUniform = {
      rk_init_float_dtype(dtype, cls)
      rk_random_uniform(shape, p$minval, p$maxval, dtype, seed = spec$seed)
    },
    TruncatedNormal = {
      rk_init_float_dtype(dtype, cls)
      rk_truncated_normal_values(shape, p$mean, p$stddev, dtype, spec$seed)
    },
    Orthogonal = {
      rk_init_float_dtype(dtype, cls)
      rk_orthogonal_values(shape, p$gain, dtype, spec$seed)
    },
    {
      # VarianceScaling and its presets.
      rk_init_float_dtype(dtype, cls)
      rk_variance_scaling_values(shape, p$scale, p$mode, p$distribution, dtype, spec$seed)
    }
  )
}

rk_variance_scaling_values <- function(shape, scale, mode, distribution, dtype, seed) {
  fans <- rk_compute_fans(shape)
  n <- switch(mode, fan_in = fans[["fan_in"]], fan_out = fans[["fan_out"]],
              fan_avg = (fans[["fan_in"]] + fans[["fan_out"]]) / 2)
  scale <- scale / max(1, n)
  switch(distribution,
    truncated_normal = {
      # 0.879... is the stddev of a standard normal truncated to [-2, 2]: dividing by it
      # makes the truncated values' stddev sqrt(scale).
      rk_truncated_normal_values(shape, 0, sqrt(scale) / 0.87962566103423978, dtype, seed)
    },
    untruncated_normal = rk_random_normal(shape, 0, sqrt(scale), dtype, seed = seed),
    uniform = {
      limit <- sqrt(3 * scale)
      rk_random_uniform(shape, -limit, limit, dtype, seed = seed)
    }
  )
}

# Normal draws outside two standard deviations are redrawn (from follow-up seeds) until
# none is left, as TensorFlow's truncated normal does.
rk_truncated_normal_values <- function(shape, mean, stddev, dtype, seed) {
  n <- prod(as.numeric(shape))
  if (n == 0) return(rk_zeros(shape, dtype))
  z <- as.vector(as.array(rk_random_normal(n, 0, 1, "float64", seed = seed)))
  bad <- which(abs(z) > 2)
  k <- 0
  while (length(bad)) {
    k <- k + 1
    z[bad] <- as.vector(as.array(rk_random_normal(length(bad), 0, 1, "float64", seed = rk_derived_seed(seed, k))))
    bad <- bad[abs(z[bad]) > 2]
  }
  rk_reshape(rk_tensor_from_r(mean + stddev * z, dtype), shape)
}

rk_orthogonal_values <- function(shape, gain, dtype, seed) {
  if (length(shape) < 2L)
    rk_abort(sprintf("the orthogonal initializer needs a shape of at least two dimensions, got shape (%s) of rank %d",
                     paste(shape, collapse = ", "), length(shape)), "rkeras_shape_error")
  num_rows <- prod(as.numeric(shape[-length(shape)]))
  num_cols <- shape[length(shape)]
  if (num_rows * num_cols == 0) return(rk_zeros(shape, dtype))
  a <- as.array(rk_random_normal(c(max(num_rows, num_cols), min(num_rows, num_cols)), 0, 1, "float64", seed = seed))
  dim(a) <- c(max(num_rows, num_cols), min(num_rows, num_cols))
  dec <- qr(a)
  q <- qr.Q(dec)
  r <- qr.R(dec)
  # Undo any (rare) column pivoting so Q matches the unpivoted factorisation.
  if (!identical(dec$pivot, seq_len(ncol(a)))) {
    r <- r[, order(dec$pivot), drop = FALSE]
  }
  q <- q * rep(sign(diag(r)), each = nrow(q))
  if (num_rows < num_cols) q <- t(q)
  rk_reshape(rk_tensor_from_r(gain * q, dtype), shape)
}

rk_identity_values <- function(shape, gain, dtype) {
  if (length(shape) != 2L)
    rk_abort(sprintf("the identity initializer can only be used for 2D matrices, got shape (%s) of rank %d",
                     paste(shape, collapse = ", "), length(shape)), "rkeras_shape_error")
  m <- matrix(0, shape[1L], shape[2L])
  k <- min(shape)
  if (k > 0) m[cbind(seq_len(k), seq_len(k))] <- gain
  rk_tensor_from_r(m, dtype)
}

# ---- STFT ------------------------------------------------------------------------------

rk_window_aliases <- list(
  hann = c("hann", "han", "hanning"), hamming = c("hamming", "hamm", "ham"),
  blackman = c("blackman", "black", "blk"), bartlett = c("bartlett", "bart", "brt"),
  triang = c("triang", "triangle", "tri"),
  boxcar = c("boxcar", "box", "ones", "rect", "rectangular")
)

rk_window_kind <- function(name) {
  for (kind in names(rk_window_aliases)) if (name %in% rk_window_aliases[[kind]]) return(kind)
  rk_abort(sprintf("window \"%s\" is not supported by rkeras; supported windows: %s (or pass the window values as a numeric vector)",
                   name, paste0("\"", unlist(rk_window_aliases, use.names = FALSE), "\"", collapse = ", ")),
           "rkeras_unsupported_error")
}

# scipy.signal.get_window(name, m, fftbins = periodic).
rk_window_values <- function(name, m, periodic) {
  kind <- rk_window_kind(name)
  if (m == 1L) return(1)
  len <- if (periodic) m + 1L else m
  n <- seq_len(len) - 1
  w <- switch(kind,
    hann = 0.5 - 0.5 * cos(2 * pi * n / (len - 1)),
    hamming = 0.54 - 0.46 * cos(2 * pi * n / (len - 1)),
    blackman = 0.42 - 0.5 * cos(2 * pi * n / (len - 1)) + 0.08 * cos(4 * pi * n / (len - 1)),
    bartlett = ifelse(n <= (len - 1) / 2, 2 * n / (len - 1), 2 - 2 * n / (len - 1)),
    triang = {
      h <- seq_len((len + 1L) %/% 2L)
      if (len %% 2L == 1L) {
        half <- 2 * h / (len + 1)
        c(half, rev(half)[-1L])
      } else {
        half <- (2 * h - 1) / len
        c(half, rev(half))
      }
    },
    boxcar = rep(1, len)
  )
  w[seq_len(m)]
}

rk_stft_values <- function(shape, p, dtype) {
  if (length(shape) != 3L)
    rk_abort(sprintf("the STFT initializer needs a shape (frame_length, input_channels, fft_bins), got shape (%s)",
                     paste(shape, collapse = ", ")), "rkeras_shape_error")
  frame_length <- shape[1L]
  channels <- shape[2L]
  bins <- shape[3L]
  n_fft <- (bins - 1) * 2
  time <- seq_len(frame_length) - 1
  freq <- (seq_len(bins) - 1) / n_fft
  args <- -2 * outer(time, freq) * pi
  kernel <- if (p$side == "real") cos(args) else sin(args)
  if (!is.null(p$window)) {
    win <- if (is.character(p$window)) rk_window_values(p$window, frame_length, p$periodic) else p$window
    if (length(win) != frame_length)
      rk_abort(sprintf("the STFT window has %d values but the kernel's frame_length is %d", length(win), frame_length),
               "rkeras_shape_error")
    scaling <- switch(if (is.null(p$scaling)) "none" else p$scaling,
                      density = sqrt(sum(win^2)), spectrum = sum(abs(win)), none = 1)
    kernel <- kernel * win / scaling
  }
  # Keras computes a (frame_length, 1, bins) kernel; the same values serve every channel.
  arr <- aperm(array(kernel, c(frame_length, bins, channels)), c(1L, 3L, 2L))
  rk_tensor_from_r(arr, dtype)
}

# ---- R function initializers -----------------------------------------------------------

rk_initializer_call_function <- function(fn, shape, dtype) {
  fmls <- names(formals(fn))
  value <- if (is.primitive(fn) || !any(c("dtype", "...") %in% fmls)) fn(shape) else fn(shape, dtype = dtype)
  if (is_rk_tensor(value)) {
    got <- rk_tensor_shape(value)
    if (!identical(as.integer(got), shape))
      rk_abort(sprintf("the initializer function returned a tensor of shape (%s) but the weight has shape (%s)",
                       paste(got, collapse = ", "), paste(shape, collapse = ", ")), "rkeras_shape_error")
    return(if (rk_tensor_dtype(value) == dtype) value else rk_cast(value, dtype))
  }
  if (!(is.numeric(value) || is.logical(value)) || is.object(value))
    rk_abort(sprintf("the initializer function must return a numeric array or an rkeras_tensor, got %s",
                     rk_obj_kind(value)), "rkeras_type_error")
  got <- if (is.null(dim(value))) length(value) else dim(value)
  if (is.null(dim(value)) && length(value) == prod(shape) && length(shape) != 1L) {
    value <- array(value, dim = if (length(shape)) shape else NULL)  # a plain vector fills in R's order
  } else if (!identical(as.integer(got), if (length(shape)) shape else 1L)) {
    rk_abort(sprintf("the initializer function returned an array of shape (%s) but the weight has shape (%s)",
                     paste(got, collapse = ", "), paste(shape, collapse = ", ")), "rkeras_shape_error")
  }
  if (length(shape) == 0L) value <- as.vector(value)[1L]
  rk_tensor_from_r(value, dtype)
}

# ---- S3 methods ------------------------------------------------------------------------

#' @export
print.rkeras_initializer <- function(x, ...) rk_obj_print(x, "initializer")

#' @export
`$.rkeras_initializer` <- function(x, name) rk_obj_dollar(x, name, rk_initializer_from_config)

# get_config() (the generic lives in model-config.R): the Keras config, with attribute
# `__class__` as keras3 returns it.
#' @export
get_config.rkeras_initializer <- function(object, ...) rk_obj_get_config(object)
