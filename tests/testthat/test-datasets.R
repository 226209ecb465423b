# Helpers ----------------------------------------------------------------------

# Point KERAS_HOME at `home`, the local-copy folders at `dirs`, and switch
# downloads off (unless `download = TRUE`), until the calling test ends.
local_dataset_env <- function(home = tempfile("keras_home_"),
                              dirs = tempfile("no_datasets_"),
                              download = FALSE, origin = NULL,
                              envir = parent.frame()) {
  dir.create(home, showWarnings = FALSE, recursive = TRUE)
  old_home <- Sys.getenv("KERAS_HOME", NA)
  old_opts <- options(rkeras.dataset_dirs = dirs,
                      rkeras.allow_download = download,
                      rkeras.datasets_origin = origin)
  Sys.setenv(KERAS_HOME = home)
  restore <- function() {
    options(old_opts)
    if (is.na(old_home)) Sys.unsetenv("KERAS_HOME")
    else Sys.setenv(KERAS_HOME = old_home)
  }
  do.call(on.exit, list(bquote(.(restore)()), add = TRUE, after = FALSE),
          envir = envir)
  invisible(home)
}

# Write an IDX file of unsigned bytes: `values` given in row-major order.
write_idx <- function(path, values, dims, gz = TRUE) {
  con <- if (gz) gzfile(path, "wb") else file(path, "wb")
  on.exit(close(con))
  writeBin(as.raw(c(0, 0, 8, length(dims))), con)
  writeBin(as.integer(dims), con, size = 4, endian = "big")
  writeBin(as.raw(values), con)
}

# Synthetic 28x28 image sets, with known pixels. Image i has pixel
# (r, c) = (i * 7 + r * 3 + c * 5) %% 256 (1-based r, c).
synthetic_pixels_c_order <- function(n) {
  i <- rep(seq_len(n), each = 28 * 28)
  r <- rep(rep(1:28, each = 28), n)
  cc <- rep(1:28, 28 * n)
  (i * 7 + r * 3 + cc * 5) %% 256
}
synthetic_image <- function(i) {
  outer(1:28, 1:28, function(r, cc) as.integer((i * 7 + r * 3 + cc * 5) %% 256))
}

write_idx_set <- function(dir, n_train = 3, n_test = 2, gz = TRUE) {
  dir.create(dir, recursive = TRUE, showWarnings = FALSE)
  ext <- if (gz) ".gz" else ""
  write_idx(file.path(dir, paste0("train-images-idx3-ubyte", ext)),
            synthetic_pixels_c_order(n_train), c(n_train, 28, 28), gz)
  write_idx(file.path(dir, paste0("train-labels-idx1-ubyte", ext)),
            (seq_len(n_train) - 1) %% 10, n_train, gz)
  write_idx(file.path(dir, paste0("t10k-images-idx3-ubyte", ext)),
            synthetic_pixels_c_order(n_test), c(n_test, 28, 28), gz)
  write_idx(file.path(dir, paste0("t10k-labels-idx1-ubyte", ext)),
            rev(seq_len(n_test)) %% 10, n_test, gz)
  invisible(dir)
}

# Write a version-1 .npy file; `values` in row-major order.
write_npy <- function(path, values, dims, descr) {
  shape <- if (length(dims) == 1) paste0("(", dims, ",)")
           else paste0("(", paste(dims, collapse = ", "), ")")
  header <- paste0("{'descr': '", descr, "', 'fortran_order': False, ",
                   "'shape': ", shape, ", }")
  pad <- 64 - (10 + nchar(header) + 1) %% 64
  header <- paste0(header, strrep(" ", pad), "\n")
  con <- file(path, "wb")
  on.exit(close(con))
  writeBin(c(as.raw(0x93), charToRaw("NUMPY"), as.raw(c(1, 0))), con)
  writeBin(nchar(header), con, size = 2, endian = "little")
  writeBin(charToRaw(header), con)
  kind <- substr(descr, 2, 2)
  size <- as.integer(substr(descr, 3, 3))
  endian <- if (substr(descr, 1, 1) == ">") "big" else "little"
  if (kind == "f") writeBin(as.double(values), con, size = size, endian = endian)
  else if (size == 1) writeBin(as.raw(values), con)
  else writeBin(as.integer(values), con, size = size, endian = endian)
}

write_mnist_npz <- function(path, n_train = 4, n_test = 2, label_descr = "|u1") {
  skip_if(!nzchar(Sys.which(Sys.getenv("R_ZIPCMD", "zip"))), "no zip program")
  tmp <- tempfile("npz_src_")
  dir.create(tmp)
  on.exit(unlink(tmp, recursive = TRUE))
  write_npy(file.path(tmp, "x_train.npy"), synthetic_pixels_c_order(n_train),
            c(n_train, 28, 28), "|u1")
  write_npy(file.path(tmp, "y_train.npy"), (seq_len(n_train) + 4) %% 10,
            n_train, label_descr)
  write_npy(file.path(tmp, "x_test.npy"), synthetic_pixels_c_order(n_test),
            c(n_test, 28, 28), "|u1")
  write_npy(file.path(tmp, "y_test.npy"), seq_len(n_test) %% 10, n_test,
            label_descr)
  dir.create(dirname(path), recursive = TRUE, showWarnings = FALSE)
  old <- setwd(tmp)
  on.exit(setwd(old), add = TRUE, after = FALSE)
  utils::zip(normalizePath(path, mustWork = FALSE),
             c("x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy"),
             flags = "-q")
  invisible(path)
}

debian_dir <- "/usr/share/datasets/fashion-mnist"

# Debian's Fashion-MNIST ---------------------------------------------------------

test_that("dataset_fashion_mnist() reads Debian's copy with keras3's structure", {
  skip_if_not(file.exists(file.path(debian_dir, "train-images-idx3-ubyte.gz")),
              "Debian's dataset-fashion-mnist is not installed")
  local_dataset_env(dirs = dirname(debian_dir))
  d <- dataset_fashion_mnist()

  expect_identical(names(d), c("train", "test"))
  expect_identical(names(d$train), c("x", "y"))
  expect_identical(names(d$test), c("x", "y"))
  expect_type(d$train$x, "integer")
  expect_type(d$train$y, "integer")
  expect_identical(dim(d$train$x), c(60000L, 28L, 28L))
  expect_identical(dim(d$test$x), c(10000L, 28L, 28L))
  expect_identical(dim(d$train$y), 60000L)  # 1-d array, as keras3
  expect_identical(dim(d$test$y), 10000L)

  expect_identical(as.vector(table(factor(d$train$y, 0:9))), rep(6000L, 10))
  expect_identical(as.vector(table(factor(d$test$y, 0:9))), rep(1000L, 10))
  expect_identical(range(d$train$x), c(0L, 255L))
  expect_identical(range(d$test$x), c(0L, 255L))
  # the first labels, as keras3's documentation shows them
  expect_identical(as.vector(d$train$y[1:10]), c(9L, 0L, 0L, 3L, 0L, 2L, 7L, 2L, 5L, 5L))
  expect_identical(as.vector(d$test$y[1:10]), c(9L, 2L, 1L, 1L, 6L, 1L, 4L, 6L, 5L, 7L))

  # x[1, , ] is the first image of the file: compare with the raw bytes,
  # read here independently (16-byte header, then row-major pixels).
  con <- gzfile(file.path(debian_dir, "train-images-idx3-ubyte.gz"), "rb")
  bytes <- readBin(con, "raw", n = 16 + 2 * 784)
  close(con)
  first <- matrix(as.integer(bytes[17:(16 + 784)]), 28, 28, byrow = TRUE)
  second <- matrix(as.integer(bytes[(17 + 784):(16 + 2 * 784)]), 28, 28,
                   byrow = TRUE)
  expect_identical(d$train$x[1, , ], first)
  expect_identical(d$train$x[2, , ], second)
  expect_identical(sum(as.integer(bytes[17:800]) * seq_len(784)),
                   sum(t(d$train$x[1, , ]) * seq_len(784)))

  # the last test image as well
  con <- gzfile(file.path(debian_dir, "t10k-images-idx3-ubyte.gz"), "rb")
  bytes <- readBin(con, "raw", n = 16 + 10000 * 784)
  close(con)
  last <- matrix(as.integer(bytes[(16 + 9999 * 784 + 1):(16 + 10000 * 784)]),
                 28, 28, byrow = TRUE)
  expect_identical(d$test$x[10000, , ], last)

  # %<-% destructuring works on the result
  c(c(x_train, y_train), c(x_test, y_test)) %<-% d
  expect_identical(dim(x_test), c(10000L, 28L, 28L))
  expect_identical(y_train, d$train$y)
})

# Cache and local copies ---------------------------------------------------------

test_that("the Keras cache is used first, with row-major index semantics", {
  home <- local_dataset_env()
  write_idx_set(file.path(home, "datasets", "fashion-mnist"), 3, 2)
  d <- dataset_fashion_mnist()
  expect_identical(dim(d$train$x), c(3L, 28L, 28L))
  for (i in 1:3) expect_identical(d$train$x[i, , ], synthetic_image(i))
  expect_identical(d$test$x[2, , ], synthetic_image(2))
  expect_identical(as.vector(d$train$y), 0:2)
  expect_identical(as.vector(d$test$y), 2:1)
  # pixel (r = 2, c = 5) of image 3
  expect_identical(d$train$x[3, 2, 5], as.integer((3 * 7 + 2 * 3 + 5 * 5) %% 256))
})

test_that("local copies are used when the cache is empty (gz or not)", {
  dirs <- tempfile("local_")
  local_dataset_env(dirs = c(tempfile("missing_"), dirs))
  write_idx_set(file.path(dirs, "fashion-mnist"), 2, 2, gz = FALSE)
  d <- dataset_fashion_mnist()
  expect_identical(d$train$x[2, , ], synthetic_image(2))
})

test_that("an unreadable cache copy warns and falls back to a local copy", {
  dirs <- tempfile("local_")
  home <- local_dataset_env(dirs = dirs)
  cache <- file.path(home, "datasets", "fashion-mnist")
  write_idx_set(cache, 2, 2)
  writeBin(as.raw(1:10), file.path(cache, "train-images-idx3-ubyte.gz"))
  write_idx_set(file.path(dirs, "fashion-mnist"), 3, 2)
  expect_warning(d <- dataset_fashion_mnist(), class = "rkeras_dataset_warning")
  expect_identical(dim(d$train$x), c(3L, 28L, 28L))
})

test_that("dataset_mnist() reads mnist.npz from the cache (Keras layout)", {
  home <- local_dataset_env()
  write_mnist_npz(file.path(home, "datasets", "mnist.npz"), 4, 2)
  d <- dataset_mnist()
  expect_identical(dim(d$train$x), c(4L, 28L, 28L))
  expect_type(d$train$x, "integer")
  for (i in 1:4) expect_identical(d$train$x[i, , ], synthetic_image(i))
  expect_identical(as.vector(d$train$y), c(5L, 6L, 7L, 8L))
  expect_identical(dim(d$train$y), 4L)
  expect_identical(as.vector(d$test$y), c(1L, 2L))
})

test_that("dataset_mnist() accepts int64 labels and an absolute path", {
  local_dataset_env()
  path <- file.path(tempfile("elsewhere_"), "my-mnist.npz")
  write_mnist_npz(path, 3, 2, label_descr = "<i8")
  d <- dataset_mnist(path = path)
  expect_type(d$train$y, "integer")
  expect_identical(as.vector(d$train$y), c(5L, 6L, 7L))
  expect_identical(d$test$x[1, , ], synthetic_image(1))
})

test_that("dataset_mnist() finds local copies: npz or IDX files", {
  dirs <- tempfile("local_")
  local_dataset_env(dirs = dirs)
  write_mnist_npz(file.path(dirs, "mnist", "mnist.npz"), 2, 2)
  expect_identical(dim(dataset_mnist()$train$x), c(2L, 28L, 28L))

  dirs2 <- tempfile("local_")
  local_dataset_env(dirs = dirs2)
  write_idx_set(file.path(dirs2, "mnist"), 5, 2)
  d <- dataset_mnist()
  expect_identical(d$train$x[5, , ], synthetic_image(5))
})

# Download ---------------------------------------------------------------------

test_that("downloads go into the Keras cache (file:// origin, no network)", {
  src <- tempfile("origin_")
  write_idx_set(src, 2, 2)
  origin <- paste0("file://", normalizePath(src), "/")
  home <- local_dataset_env(download = TRUE, origin = origin)
  msgs <- character()
  d <- withCallingHandlers(dataset_fashion_mnist(),
    rkeras_download_message = function(m) {
      msgs <<- c(msgs, conditionMessage(m))
      invokeRestart("muffleMessage")
    })
  expect_length(msgs, 4)
  expect_match(msgs, "^Downloading data from file://", all = TRUE)
  expect_identical(d$train$x[2, , ], synthetic_image(2))
  cached <- file.path(home, "datasets", "fashion-mnist",
                      "train-images-idx3-ubyte.gz")
  expect_true(file.exists(cached))
  # second call: from the cache, no download
  unlink(src, recursive = TRUE)
  expect_silent(dataset_fashion_mnist())

  npz_src <- tempfile("origin_")
  write_mnist_npz(file.path(npz_src, "mnist.npz"), 2, 2)
  options(rkeras.datasets_origin = paste0("file://", normalizePath(npz_src), "/"))
  expect_message(d <- dataset_mnist(), "Downloading")
  expect_true(file.exists(file.path(home, "datasets", "mnist.npz")))
})

test_that("a failed download is reported in the error", {
  local_dataset_env(download = TRUE,
                    origin = paste0("file://", tempfile("nowhere_"), "/"))
  err <- tryCatch(suppressMessages(dataset_fashion_mnist()),
                  error = function(e) e)
  expect_s3_class(err, "rkeras_dataset_error")
  expect_match(conditionMessage(err), "download: file://")
  expect_false(any(grepl("\\.part$", list.files(Sys.getenv("KERAS_HOME"),
                                                 recursive = TRUE))))
})

# Failure ----------------------------------------------------------------------

test_that("with nothing available the error is classed and names every place", {
  home <- local_dataset_env()
  err <- tryCatch(dataset_fashion_mnist(), error = function(e) e)
  expect_s3_class(err, "rkeras_dataset_error")
  expect_s3_class(err, "rkeras_error")
  msg <- conditionMessage(err)
  expect_match(msg, "Could not load the Fashion-MNIST dataset", fixed = TRUE)
  expect_match(msg, file.path(home, "datasets", "fashion-mnist"), fixed = TRUE)
  expect_match(msg, getOption("rkeras.dataset_dirs"), fixed = TRUE)
  expect_match(msg, "apt-get install dataset-fashion-mnist", fixed = TRUE)
  expect_match(msg, "rkeras.allow_download = FALSE", fixed = TRUE)
  expect_match(msg, "storage.googleapis.com/tensorflow/tf-keras-datasets",
               fixed = TRUE)

  err <- tryCatch(dataset_mnist(), error = function(e) e)
  expect_s3_class(err, "rkeras_dataset_error")
  msg <- conditionMessage(err)
  expect_match(msg, "Could not load the MNIST dataset", fixed = TRUE)
  expect_match(msg, file.path(home, "datasets", "mnist.npz"), fixed = TRUE)
  expect_match(msg, "mnist.npz", fixed = TRUE)
})

test_that("bad arguments are classed errors", {
  local_dataset_env()
  expect_error(dataset_mnist(path = 1), class = "rkeras_value_error")
  expect_error(dataset_mnist(path = ""), class = "rkeras_value_error")
})

# Readers ----------------------------------------------------------------------

test_that("the .npy reader handles dtypes, byte order and Fortran order", {
  f <- tempfile(fileext = ".npy")
  write_npy(f, c(1.5, -2, 3, 4, 5, 6), c(2, 3), ">f8")
  expect_identical(rk_read_npy(f), matrix(c(1.5, -2, 3, 4, 5, 6), 2, byrow = TRUE))
  write_npy(f, c(1, 2, 3, 4, 5, 6), c(2, 3), "<f4")
  expect_identical(rk_read_npy(f), matrix(c(1, 2, 3, 4, 5, 6), 2, byrow = TRUE))
  write_npy(f, c(-1, 70000, 3), 3, "<i4")
  expect_identical(rk_read_npy(f), array(c(-1L, 70000L, 3L), dim = 3))
  write_npy(f, c(1, 60000), 2, "<u2")
  expect_identical(as.vector(rk_read_npy(f)), c(1L, 60000L))
  writeBin(as.raw(1:20), f)
  expect_error(rk_read_npy(f), "not a .npy file")
})

test_that("the IDX reader rejects truncated and foreign files", {
  f <- tempfile()
  write_idx(f, 1:5, 10, gz = FALSE)
  expect_error(rk_read_idx(f), "truncated")
  writeBin(charToRaw("hello world"), f)
  expect_error(rk_read_idx(f), "not an IDX file")
  write_idx(f, 0:5, c(2, 3))
  expect_identical(rk_read_idx(f), matrix(0:5, 2, byrow = TRUE))
})
