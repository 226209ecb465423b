# Initializers: Keras 3 formulas checked on large draws, exact values for the
# deterministic ones, seeds, string resolution and configs.

gen <- function(init, shape, dtype = "float64") as.array(rkeras:::rk_initializer_generate(init, shape, dtype))

test_that("constructors have keras3's signatures and defaults", {
  expect_identical(formals(initializer_constant), as.pairlist(alist(value = 0)))
  expect_identical(formals(initializer_identity), as.pairlist(alist(gain = 1)))
  expect_identical(formals(initializer_orthogonal), as.pairlist(alist(gain = 1, seed = NULL)))
  expect_identical(formals(initializer_random_normal), as.pairlist(alist(mean = 0, stddev = 0.05, seed = NULL)))
  expect_identical(formals(initializer_random_uniform), as.pairlist(alist(minval = -0.05, maxval = 0.05, seed = NULL)))
  expect_identical(formals(initializer_truncated_normal), as.pairlist(alist(mean = 0, stddev = 0.05, seed = NULL)))
  expect_identical(formals(initializer_variance_scaling),
                   as.pairlist(alist(scale = 1, mode = "fan_in", distribution = "truncated_normal", seed = NULL)))
  expect_identical(formals(initializer_stft),
                   as.pairlist(alist(side = "real", window = "hann", scaling = "density", periodic = FALSE)))
  for (f in list(initializer_glorot_normal, initializer_glorot_uniform, initializer_he_normal,
                 initializer_he_uniform, initializer_lecun_normal, initializer_lecun_uniform))
    expect_identical(formals(f), as.pairlist(alist(seed = NULL)))
  expect_null(formals(initializer_zeros))
  expect_null(formals(initializer_ones))
})

test_that("fans are computed as Keras computes them", {
  fans <- rkeras:::rk_compute_fans
  expect_equal(fans(integer()), c(fan_in = 1, fan_out = 1))
  expect_equal(fans(7L), c(fan_in = 7, fan_out = 7))
  expect_equal(fans(c(784L, 256L)), c(fan_in = 784, fan_out = 256))
  expect_equal(fans(c(3L, 16L, 32L)), c(fan_in = 48, fan_out = 96))
  expect_equal(fans(c(3L, 3L, 16L, 32L)), c(fan_in = 144, fan_out = 288))
})

test_that("uniform variance-scaling initializers have Keras's limits and variance", {
  shape <- c(400L, 600L)
  cases <- list(
    list(initializer_glorot_uniform(seed = 1), sqrt(6 / (400 + 600))),
    list(initializer_he_uniform(seed = 2), sqrt(6 / 400)),
    list(initializer_lecun_uniform(seed = 3), sqrt(3 / 400)),
    list(initializer_variance_scaling(scale = 0.5, mode = "fan_out", distribution = "uniform", seed = 4),
         sqrt(3 * 0.5 / 600))
  )
  for (case in cases) {
    x <- gen(case[[1]], shape)
    limit <- case[[2]]
    expect_identical(dim(x), shape)
    expect_true(all(x >= -limit & x <= limit))
    expect_gt(max(x), 0.99 * limit)
    expect_lt(min(x), -0.99 * limit)
    expect_equal(mean(x), 0, tolerance = 0.01 * limit)
    expect_equal(var(as.vector(x)), limit^2 / 3, tolerance = 0.02)
  }
})

test_that("normal variance-scaling initializers are truncated normals with Keras's stddev", {
  shape <- c(500L, 400L)
  cases <- list(
    list(initializer_glorot_normal(seed = 1), 2 / (500 + 400)),
    list(initializer_he_normal(seed = 2), 2 / 500),
    list(initializer_lecun_normal(seed = 3), 1 / 500),
    list(initializer_variance_scaling(scale = 3, mode = "fan_avg", seed = 4), 3 / 450),
    list(initializer_variance_scaling(scale = 3, mode = "fan_avg", distribution = "normal", seed = 4), 3 / 450)
  )
  for (case in cases) {
    x <- as.vector(gen(case[[1]], shape))
    target_sd <- sqrt(case[[2]])
    pre_sd <- target_sd / 0.87962566103423978  # the stddev before truncation
    expect_true(all(abs(x) <= 2 * pre_sd * (1 + 1e-12)))
    expect_gt(max(abs(x)), 1.98 * pre_sd)
    expect_equal(mean(x), 0, tolerance = 0.01 * target_sd)
    expect_equal(sd(x), target_sd, tolerance = 0.01)  # Keras's correction: sd after truncation
  }
  # Untruncated: plain normal with stddev sqrt(scale / n).
  x <- as.vector(gen(initializer_variance_scaling(scale = 2, distribution = "untruncated_normal", seed = 5),
                     c(3L, 3L, 16L, 32L)))  # fan_in = 144
  expect_equal(sd(x), sqrt(2 / 144), tolerance = 0.03)
  expect_gt(max(abs(x)), 2.5 * sqrt(2 / 144))
})

test_that("random_normal, random_uniform and truncated_normal follow their parameters", {
  x <- as.vector(gen(initializer_random_normal(mean = 3, stddev = 2, seed = 1), c(200000L)))
  expect_equal(mean(x), 3, tolerance = 0.005)
  expect_equal(sd(x), 2, tolerance = 0.01)
  expect_gt(max(abs(x - 3)), 8)  # not truncated

  x <- as.vector(gen(initializer_random_uniform(minval = -1, maxval = 3, seed = 2), c(200000L)))
  expect_true(all(x >= -1 & x < 3))
  expect_equal(mean(x), 1, tolerance = 0.005)
  expect_equal(var(x), 16 / 12, tolerance = 0.01)

  x <- as.vector(gen(initializer_truncated_normal(mean = 1, stddev = 0.5, seed = 3), c(200000L)))
  expect_true(all(x >= 0 & x <= 2))
  expect_equal(mean(x), 1, tolerance = 0.005)
  expect_equal(sd(x), 0.5 * 0.87962566103423978, tolerance = 0.01)
  # the two-stddev tails are redrawn, not clipped: no pile-up at the bounds (a truncated
  # normal has 0.23% of its mass within 1% of them; clipping would put 4.6% there)
  expect_lt(mean(abs(x - 1) > 0.99), 0.004)

  defaults <- initializer_random_normal(seed = 1)$get_config()
  expect_identical(defaults, list(seed = 1L, mean = 0, stddev = 0.05))
})

test_that("orthogonal gives orthonormal rows or columns, reshaped row-major", {
  q <- gen(initializer_orthogonal(seed = 1), c(7L, 4L))
  expect_equal(crossprod(q), diag(4), tolerance = 1e-10)
  q <- gen(initializer_orthogonal(seed = 2), c(3L, 6L))
  expect_equal(tcrossprod(q), diag(3), tolerance = 1e-10)
  q <- gen(initializer_orthogonal(gain = 2.5, seed = 3), c(5L, 5L))
  expect_equal(crossprod(q), 6.25 * diag(5), tolerance = 1e-10)
  expect_equal(tcrossprod(q), 6.25 * diag(5), tolerance = 1e-10)
  # (2, 3, 4): a (6, 4) matrix with orthonormal columns, reshaped in row-major order.
  k <- gen(initializer_orthogonal(seed = 4), c(2L, 3L, 4L))
  expect_identical(dim(k), c(2L, 3L, 4L))
  m <- array_reshape(k, c(6, 4))
  expect_equal(crossprod(m), diag(4), tolerance = 1e-10)
  # float32 output is orthogonal to float32 precision
  q32 <- as.array(initializer_orthogonal(seed = 5)(c(64, 32)))
  expect_equal(crossprod(q32), diag(32), tolerance = 1e-5)
  expect_error(gen(initializer_orthogonal(), 5L), class = "rkeras_shape_error")
  expect_error(gen(initializer_orthogonal(), 5L), "at least two dimensions")
})

test_that("identity, constant, zeros and ones give exact values", {
  expect_identical(gen(initializer_identity(), c(3L, 3L)), diag(3))
  expect_identical(gen(initializer_identity(gain = 2), c(2L, 3L)), matrix(c(2, 0, 0, 2, 0, 0), 2))
  expect_identical(gen("identity", c(3L, 2L)), matrix(c(1, 0, 0, 0, 1, 0), 3))
  expect_error(gen(initializer_identity(), c(2L, 2L, 2L)), class = "rkeras_shape_error")
  expect_error(gen(initializer_identity(), c(2L, 2L, 2L)), "2D matrices")

  expect_identical(gen(initializer_constant(1.5), c(2L, 2L)), matrix(1.5, 2, 2))
  expect_identical(gen(initializer_zeros(), c(2L, 3L)), matrix(0, 2, 3))
  expect_identical(as.vector(gen(initializer_ones(), 4L)), rep(1, 4))
  expect_identical(gen("ones", c(2L, 1L, 2L), dtype = "int32"), array(1L, c(2, 1, 2)))
  expect_identical(rkeras:::rk_tensor_dtype(rkeras:::rk_initializer_generate("zeros", c(2, 2))), "float32")
  expect_error(initializer_constant(c(1, 2)), class = "rkeras_value_error")
  expect_error(initializer_constant("a"), "`value` must be a single finite number")
})

test_that("the initializer object is callable with keras3's (shape, dtype)", {
  init <- initializer_constant(10)
  v <- init(shape = c(2, 2))
  expect_s3_class(v, "rkeras_tensor")
  expect_identical(rkeras:::rk_tensor_dtype(v), config_floatx())
  expect_identical(as.array(v), matrix(10, 2, 2))
  expect_identical(rkeras:::rk_tensor_dtype(init(c(2, 2), dtype = "float64")), "float64")
  expect_identical(rkeras:::rk_tensor_dtype(init(list(2, 2))), "float32")
  expect_error(init(c(2, NA)), class = "rkeras_value_error")
  expect_error(init(c(2, -1)), "non-negative whole numbers")
  expect_error(init(c(2, 2), dtype = "float16"), class = "rkeras_value_error")
  expect_error(initializer_glorot_uniform()(c(2, 2), dtype = "int32"), class = "rkeras_type_error")
  expect_s3_class(initializer_glorot_uniform(),
                  c("keras.src.initializers.random_initializers.GlorotUniform",
                    "keras.src.initializers.initializer.Initializer", "rkeras_initializer", "function"),
                  exact = TRUE)
  expect_output(print(initializer_random_uniform(seed = 3)),
                "RandomUniform\\(seed = 3, minval = -0.05, maxval = 0.05\\)")
})

test_that("seeded initializers repeat their values; set.seed() reproduces unseeded ones", {
  a <- initializer_glorot_uniform(seed = 42)
  b <- initializer_glorot_uniform(seed = 42)
  expect_identical(gen(a, c(5L, 4L)), gen(a, c(5L, 4L)))
  expect_identical(gen(a, c(5L, 4L)), gen(b, c(5L, 4L)))
  expect_false(identical(gen(a, c(5L, 4L)), gen(initializer_glorot_uniform(seed = 43), c(5L, 4L))))
  tn <- initializer_truncated_normal(seed = 7)
  expect_identical(gen(tn, c(300L, 30L)), gen(tn, c(300L, 30L)))
  expect_identical(gen(initializer_orthogonal(seed = 1), c(4L, 4L)), gen(initializer_orthogonal(seed = 1), c(4L, 4L)))

  # As Keras 3: an unseeded initializer fixes its seed at creation.
  u <- initializer_he_normal()
  expect_identical(gen(u, c(6L, 3L)), gen(u, c(6L, 3L)))
  expect_null(u$get_config()$seed)
  # Two fresh unseeded initializers differ; set.seed() reproduces them.
  expect_false(identical(gen("glorot_uniform", c(6L, 3L)), gen("glorot_uniform", c(6L, 3L))))
  draw <- function() list(gen("glorot_uniform", c(6L, 3L)), gen("he_normal", c(6L, 3L)),
                          gen(initializer_orthogonal(), c(3L, 3L)), gen("uniform", 5L))
  set.seed(123)
  first <- draw()
  set.seed(123)
  expect_identical(draw(), first)
  expect_error(initializer_glorot_uniform(seed = -1), class = "rkeras_value_error")
  expect_error(initializer_glorot_uniform(seed = 1.5), "`seed` must be NULL or a single non-negative whole number")
})

test_that("strings resolve as Keras resolves them", {
  cls <- function(x) rkeras:::rk_get_initializer(x)$class_name
  pairs <- c(glorot_uniform = "GlorotUniform", GlorotUniform = "GlorotUniform",
             glorot_normal = "GlorotNormal", GlorotNormal = "GlorotNormal",
             he_normal = "HeNormal", HeNormal = "HeNormal", he_uniform = "HeUniform", HeUniform = "HeUniform",
             lecun_normal = "LecunNormal", LecunNormal = "LecunNormal",
             lecun_uniform = "LecunUniform", LecunUniform = "LecunUniform",
             zeros = "Zeros", Zeros = "Zeros", zero = "Zeros", ones = "Ones", Ones = "Ones", one = "Ones",
             constant = "Constant", Constant = "Constant", identity = "Identity", Identity = "Identity",
             IdentityInitializer = "Identity", orthogonal = "Orthogonal", Orthogonal = "Orthogonal",
             OrthogonalInitializer = "Orthogonal", random_normal = "RandomNormal", RandomNormal = "RandomNormal",
             normal = "RandomNormal", random_uniform = "RandomUniform", RandomUniform = "RandomUniform",
             uniform = "RandomUniform", truncated_normal = "TruncatedNormal", TruncatedNormal = "TruncatedNormal",
             variance_scaling = "VarianceScaling", VarianceScaling = "VarianceScaling",
             stft = "STFT", STFT = "STFT", STFTInitializer = "STFT")
  for (name in names(pairs)) expect_identical(cls(name), pairs[[name]], info = name)
  expect_identical(rkeras:::rk_get_initializer("uniform")$get_config(), list(seed = NULL, minval = -0.05, maxval = 0.05))
  expect_identical(rkeras:::rk_get_initializer("normal")$get_config(), list(seed = NULL, mean = 0, stddev = 0.05))

  expect_error(rkeras:::rk_get_initializer("glorot"), class = "rkeras_value_error")
  expect_error(rkeras:::rk_get_initializer("glorot"), "unknown initializer \"glorot\"; expected one of .*\"glorot_uniform\"")
  expect_error(rkeras:::rk_get_initializer("GLOROT_UNIFORM"), "case-sensitive")
  expect_error(rkeras:::rk_get_initializer(c("zeros", "ones")), class = "rkeras_value_error")
  expect_error(rkeras:::rk_get_initializer(42), class = "rkeras_type_error")
  expect_error(rkeras:::rk_get_initializer(42), "could not interpret initializer identifier")
  expect_error(rkeras:::rk_get_initializer(regularizer_l2()), class = "rkeras_type_error")
  expect_null(rkeras:::rk_get_initializer(NULL))
  init <- initializer_he_normal(seed = 1)
  expect_identical(rkeras:::rk_get_initializer(init), init)
})

test_that("configs serialise as Keras 3 and round-trip", {
  cfg <- rkeras:::rk_obj_config(initializer_glorot_uniform())
  expect_identical(cfg, list(module = "keras.initializers", class_name = "GlorotUniform",
                             config = list(seed = NULL), registered_name = NULL))
  expect_identical(initializer_variance_scaling(scale = 2, mode = "fan_avg", distribution = "uniform", seed = 3)$get_config(),
                   list(seed = 3L, scale = 2, mode = "fan_avg", distribution = "uniform"))
  expect_identical(initializer_orthogonal(gain = 2)$get_config(), list(seed = NULL, gain = 2))
  expect_identical(initializer_constant(3)$get_config(), list(value = 3))
  expect_identical(initializer_identity()$get_config(), list(gain = 1))
  expect_length(initializer_zeros()$get_config(), 0L)
  expect_identical(initializer_stft()$get_config(),
                   list(side = "real", window = "hann", periodic = FALSE, scaling = "density"))
  expect_identical(initializer_truncated_normal(seed = 5)$stddev, 0.05)

  # From a Keras config list, with or without module / registered_name.
  back <- rkeras:::rk_get_initializer(list(module = "keras.initializers", class_name = "VarianceScaling",
                                           config = list(seed = 9L, scale = 2, mode = "fan_out",
                                                         distribution = "untruncated_normal"),
                                           registered_name = NULL))
  expect_identical(back$class_name, "VarianceScaling")
  expect_identical(gen(back, c(4L, 4L)),
                   gen(initializer_variance_scaling(2, "fan_out", "untruncated_normal", seed = 9), c(4L, 4L)))
  expect_identical(rkeras:::rk_get_initializer(list(class_name = "Zeros", config = list()))$class_name, "Zeros")
  expect_identical(initializer_he_uniform(seed = 2)$clone()$get_config(), list(seed = 2L))
  expect_error(rkeras:::rk_get_initializer(list(class_name = "Zeros", config = list(value = 1))),
               "unknown config field")
  expect_error(rkeras:::rk_get_initializer(list(class_name = "Nope", config = list())), class = "rkeras_value_error")
})

test_that("constructor arguments are validated", {
  expect_error(initializer_variance_scaling(scale = 0), class = "rkeras_value_error")
  expect_error(initializer_variance_scaling(mode = "fan"), "`mode` must be one of \"fan_in\", \"fan_out\", \"fan_avg\"")
  expect_error(initializer_variance_scaling(distribution = "cauchy"), class = "rkeras_value_error")
  expect_error(initializer_random_normal(stddev = -1), class = "rkeras_value_error")
  expect_error(initializer_random_uniform(minval = 1, maxval = 0), "must not be smaller")
  expect_error(initializer_identity(gain = NA), class = "rkeras_value_error")
  expect_error(initializer_stft(side = "both"), class = "rkeras_value_error")
  expect_error(initializer_stft(scaling = "l2"), class = "rkeras_value_error")
  expect_error(initializer_stft(window = "kaiser"), class = "rkeras_unsupported_error")
  expect_error(initializer_stft(periodic = NA), class = "rkeras_type_error")
})

test_that("stft gives the windowed Fourier basis", {
  frame <- 8L
  bins <- 5L
  n <- 0:(frame - 1)
  f <- 0:(bins - 1)
  arg <- -2 * pi * outer(n, f) / (2 * (bins - 1))
  hann <- 0.5 - 0.5 * cos(2 * pi * n / (frame - 1))  # symmetric Hann, as scipy
  k <- gen(initializer_stft(), c(frame, 1L, bins))
  expect_identical(dim(k), c(frame, 1L, bins))
  expect_equal(k[, 1, ], cos(arg) * hann / sqrt(sum(hann^2)), tolerance = 1e-12)

  hann_p <- 0.5 - 0.5 * cos(2 * pi * n / frame)  # periodic Hann
  k <- gen(initializer_stft(side = "imag", periodic = TRUE, scaling = "spectrum"), c(frame, 2L, bins))
  expect_equal(k[, 2, ], sin(arg) * hann_p / sum(hann_p), tolerance = 1e-12)
  expect_identical(k[, 1, ], k[, 2, ])

  k <- gen(initializer_stft(window = NULL), c(frame, 1L, bins))
  expect_equal(k[, 1, ], cos(arg), tolerance = 1e-12)
  w <- seq(0.1, 0.8, by = 0.1)
  k <- gen(initializer_stft(window = w, scaling = NULL), c(frame, 1L, bins))
  expect_equal(k[, 1, ], cos(arg) * w, tolerance = 1e-12)
  ham <- 0.54 - 0.46 * cos(2 * pi * n / (frame - 1))
  k <- gen(initializer_stft(window = "hamming", scaling = NULL), c(frame, 1L, bins))
  expect_equal(k[, 1, ], cos(arg) * ham, tolerance = 1e-12)
  blk <- 0.42 - 0.5 * cos(2 * pi * n / (frame - 1)) + 0.08 * cos(4 * pi * n / (frame - 1))
  k <- gen(initializer_stft(window = "blackman", scaling = NULL), c(frame, 1L, bins))
  expect_equal(k[, 1, ], cos(arg) * blk, tolerance = 1e-12)
  # scipy's triang(5) = (1, 2, 3, 2, 1) / 3 and bartlett(5) = (0, 1, 2, 1, 0) / 2
  expect_equal(rkeras:::rk_window_values("triang", 5L, FALSE), c(1, 2, 3, 2, 1) / 3)
  expect_equal(rkeras:::rk_window_values("triang", 4L, FALSE), c(1, 3, 3, 1) / 4)
  expect_equal(rkeras:::rk_window_values("bartlett", 5L, FALSE), c(0, 1, 2, 1, 0) / 2)
  expect_equal(rkeras:::rk_window_values("boxcar", 3L, TRUE), c(1, 1, 1))

  expect_error(gen(initializer_stft(window = c(1, 2)), c(frame, 1L, bins)), class = "rkeras_shape_error")
  expect_error(gen(initializer_stft(), c(8L, 5L)), class = "rkeras_shape_error")
})

test_that("R functions work as initializers", {
  f <- function(shape, dtype = NULL) array(seq_len(prod(shape)), shape)
  expect_identical(rkeras:::rk_get_initializer(f), f)
  expect_identical(gen(f, c(2L, 3L)), matrix(as.numeric(1:6), 2))
  g <- function(shape) rep(0.5, prod(shape))  # a plain vector of the right length fills in R order
  expect_identical(gen(g, c(2L, 2L)), matrix(0.5, 2, 2))
  h <- function(shape, dtype) rk_tensor(matrix(1, 2, 2), dtype = dtype)
  v <- rkeras:::rk_initializer_generate(h, c(2, 2), "float32")
  expect_identical(rkeras:::rk_tensor_dtype(v), "float32")
  expect_error(gen(function(shape, dtype) matrix(0, 3, 2), c(2L, 3L)), class = "rkeras_shape_error")
  expect_error(gen(function(shape, dtype) matrix(0, 3, 2), c(2L, 3L)), "returned an array of shape \\(3, 2\\)")
  expect_error(gen(function(shape, dtype) "a", c(2L, 3L)), class = "rkeras_type_error")
})

test_that("initializers survive saveRDS()", {
  init <- initializer_truncated_normal(stddev = 0.1, seed = 11)
  path <- tempfile(fileext = ".rds")
  on.exit(unlink(path))
  saveRDS(init, path)
  back <- readRDS(path)
  expect_identical(gen(back, c(3L, 3L)), gen(init, c(3L, 3L)))
  expect_lt(file.size(path), 5000)
})

test_that("get_config() and from_config helpers work for all three kinds", {
  cfg <- get_config(initializer_random_uniform(minval = -1, maxval = 1, seed = 2))
  expect_identical(attr(cfg, "__class__"), "RandomUniform")
  expect_identical(unclass(structure(cfg, "__class__" = NULL)), list(seed = 2L, minval = -1, maxval = 1))
  back <- rkeras:::rk_keras_object_from_config("RandomUniform", cfg)
  expect_identical(gen(back, c(3L, 2L)), gen(initializer_random_uniform(-1, 1, seed = 2), c(3L, 2L)))
  expect_identical(attr(get_config(regularizer_l2(0.1)), "__class__"), "L2")
  expect_identical(attr(get_config(constraint_nonneg()), "__class__"), "NonNeg")
  expect_identical(rkeras:::rk_keras_object_from_config("L1L2", list(l1 = 1, l2 = 2))$get_config(), list(l1 = 1, l2 = 2))
  expect_identical(rkeras:::rk_keras_object_from_config("MaxNorm", get_config(constraint_maxnorm(3, axis = 2)))$axis, 1L)
  expect_null(rkeras:::rk_keras_object_from_config("Dense", list(units = 3)))
})
