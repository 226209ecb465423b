# Datasets: dataset_mnist() and dataset_fashion_mnist().
#
# Each loader tries, in order:
#   (a) the Keras cache, `file.path(KERAS_HOME or ~/.keras, "datasets")`, in
#       Keras's own layout (mnist.npz; fashion-mnist/*-idx*-ubyte.gz), so files
#       downloaded by Python Keras or keras3 are reused;
#   (b) local copies under getOption("rkeras.dataset_dirs"), by default
#       /usr/share/datasets (Debian's dataset-fashion-mnist package installs
#       /usr/share/datasets/fashion-mnist);
#   (c) a download from Keras's own origin into the cache (skipped when
#       getOption("rkeras.allow_download") is FALSE);
# and otherwise fails with an error of class "rkeras_dataset_error" that
# names every place it looked and what to install.
#
# Arrays in the files are row-major (C order); they are turned into R arrays
# with the same index semantics: image i, row r, column c of the file is
# x[i, r, c].

rk_keras_datasets_origin <-
  "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

# The download origin; an internal option lets tests exercise the download
# code path with a file:// URL.
rk_datasets_origin <- function() {
  getOption("rkeras.datasets_origin", rk_keras_datasets_origin)
}

rk_fashion_mnist_files <- c(
  train_y = "train-labels-idx1-ubyte.gz",
  train_x = "train-images-idx3-ubyte.gz",
  test_y = "t10k-labels-idx1-ubyte.gz",
  test_x = "t10k-images-idx3-ubyte.gz"
)

rk_dataset_cache_dir <- function() {
  file.path(rk_keras_home(), "datasets")
}

rk_dataset_local_dirs <- function() {
  dirs <- getOption("rkeras.dataset_dirs", "/usr/share/datasets")
  as.character(dirs)
}

rk_dataset_download_allowed <- function() {
  !isFALSE(getOption("rkeras.allow_download", TRUE))
}

#' MNIST database of handwritten digits
#'
#' 60,000 28x28 grayscale images of the 10 digits, with a test set of 10,000
#' images, as `keras3::dataset_mnist()` returns them.
#'
#' The data are looked for, in order:
#' 1. in the Keras cache, `file.path(Sys.getenv("KERAS_HOME", "~/.keras"),
#'    "datasets", path)` (a `mnist.npz` downloaded by Keras or keras3 is used
#'    as is);
#' 2. in local copies under the folders of `getOption("rkeras.dataset_dirs")`
#'    (default `"/usr/share/datasets"`): `mnist.npz`, `mnist/mnist.npz`, or the
#'    four original IDX files (`train-images-idx3-ubyte.gz`, ...) in `mnist/`;
#' 3. by downloading `mnist.npz` from Keras's origin into the cache, unless
#'    `options(rkeras.allow_download = FALSE)`.
#'
#' When none of these works, an error of class `"rkeras_dataset_error"` says
#' where it looked.
#'
#' @param path Where to cache the dataset, relative to the Keras cache folder
#'   (`~/.keras/datasets`), or an absolute path.
#' @param convert Accepted for compatibility with keras3; rkeras always returns
#'   R arrays.
#'
#' @return A list `list(train = list(x, y), test = list(x, y))`: `x` is an
#'   integer array of pixel values 0-255 with dimensions
#'   `(num_samples, 28, 28)`, `y` an integer 1-d array of digit labels 0-9.
#'   The structure suits zeallot's destructuring:
#'   `c(c(x_train, y_train), c(x_test, y_test)) %<-% dataset_mnist()`.
#'
#' @examples
#' \donttest{
#' # Needs the network or a cached copy; otherwise a classed error says where
#' # rkeras looked.
#' mnist <- tryCatch(dataset_mnist(), rkeras_dataset_error = function(e) {
#'   message(conditionMessage(e))
#'   NULL
#' })
#' if (!is.null(mnist)) str(mnist)
#' }
#' @family datasets
#' @export
dataset_mnist <- function(path = "mnist.npz", convert = TRUE) {
  if (!is.character(path) || length(path) != 1L || !nzchar(path)) {
    rkeras_abort("`path` must be a single file name or path.")
  }
  cache_dir <- rk_dataset_cache_dir()
  cache_file <- if (rk_is_absolute_path(path)) path.expand(path)
                else file.path(cache_dir, path)
  url <- paste0(rk_datasets_origin(), "mnist.npz")
  tried <- character()

  # (a) cache
  res <- rk_try_source(cache_file, rk_load_mnist_npz, "cache")
  if (!is.null(res$data)) return(res$data)
  tried <- c(tried, res$note)

  # (b) local copies
  for (d in rk_dataset_local_dirs()) {
    for (f in c(file.path(d, "mnist.npz"), file.path(d, "mnist", "mnist.npz"))) {
      res <- rk_try_source(f, rk_load_mnist_npz, "local copy")
      if (!is.null(res$data)) return(res$data)
      tried <- c(tried, res$note)
    }
    idx_dir <- file.path(d, "mnist")
    res <- rk_try_source(idx_dir, rk_load_idx_set, "local copy",
                         exists = rk_idx_set_exists(idx_dir))
    if (!is.null(res$data)) return(res$data)
    tried <- c(tried, res$note)
  }

  # (c) download
  if (rk_dataset_download_allowed()) {
    dest <- rk_writable_cache_file(cache_file)
    err <- rk_download(url, dest)
    if (is.null(err)) {
      res <- rk_try_source(dest, rk_load_mnist_npz, "download")
      if (!is.null(res$data)) return(res$data)
      unlink(dest)
      tried <- c(tried, paste0("download: ", url, " (the downloaded file ",
                               "could not be read and was removed: ",
                               res$reason, ")"))
    } else {
      tried <- c(tried, paste0("download: ", url, " (", err, ")"))
    }
  } else {
    tried <- c(tried, paste0("download: ", url, " (not tried: ",
                             "options(rkeras.allow_download = FALSE))"))
  }

  rk_dataset_fail("MNIST", tried, c(
    paste0("Connect to the network and call dataset_mnist() again, or copy ",
           "mnist.npz (", url, ") to ", cache_file, ".")
  ))
}

#' Fashion-MNIST database of fashion articles
#'
#' 60,000 28x28 grayscale images of 10 fashion categories, with a test set of
#' 10,000 images, as `keras3::dataset_fashion_mnist()` returns them. The class
#' labels are:
#'
#' | Label | Description |
#' |---|---|
#' | 0 | T-shirt/top |
#' | 1 | Trouser |
#' | 2 | Pullover |
#' | 3 | Dress |
#' | 4 | Coat |
#' | 5 | Sandal |
#' | 6 | Shirt |
#' | 7 | Sneaker |
#' | 8 | Bag |
#' | 9 | Ankle boot |
#'
#' The data are looked for, in order:
#' 1. in the Keras cache, `file.path(Sys.getenv("KERAS_HOME", "~/.keras"),
#'    "datasets", "fashion-mnist")` (the four `*-idx*-ubyte.gz` files Keras
#'    downloads);
#' 2. in `fashion-mnist/` under the folders of
#'    `getOption("rkeras.dataset_dirs")` (default `"/usr/share/datasets"`,
#'    where Debian's and Ubuntu's `dataset-fashion-mnist` package puts them);
#' 3. by downloading them from Keras's origin into the cache, unless
#'    `options(rkeras.allow_download = FALSE)`.
#'
#' When none of these works, an error of class `"rkeras_dataset_error"` says
#' where it looked and what to install.
#'
#' @inheritParams dataset_mnist
#'
#' @return A list `list(train = list(x, y), test = list(x, y))`: `x` is an
#'   integer array of pixel values 0-255 with dimensions
#'   `(num_samples, 28, 28)`, `y` an integer 1-d array of labels 0-9.
#'
#' @examples
#' \donttest{
#' fashion <- tryCatch(dataset_fashion_mnist(),
#'                     rkeras_dataset_error = function(e) NULL)
#' if (!is.null(fashion)) {
#'   str(fashion)
#'   image(t(fashion$train$x[1, 28:1, ]), col = grey.colors(255, rev = TRUE))
#' }
#' }
#' @family datasets
#' @export
dataset_fashion_mnist <- function(convert = TRUE) {
  cache_dir <- file.path(rk_dataset_cache_dir(), "fashion-mnist")
  tried <- character()

  # (a) cache
  res <- rk_try_source(cache_dir, rk_load_idx_set, "cache",
                       exists = rk_idx_set_exists(cache_dir))
  if (!is.null(res$data)) return(res$data)
  tried <- c(tried, res$note)

  # (b) local copies
  for (d in rk_dataset_local_dirs()) {
    dir <- file.path(d, "fashion-mnist")
    res <- rk_try_source(dir, rk_load_idx_set, "local copy",
                         exists = rk_idx_set_exists(dir))
    if (!is.null(res$data)) return(res$data)
    tried <- c(tried, res$note)
  }

  # (c) download
  origin <- rk_datasets_origin()
  urls <- paste0(origin, rk_fashion_mnist_files)
  if (rk_dataset_download_allowed()) {
    dest_dir <- dirname(rk_writable_cache_file(
      file.path(cache_dir, rk_fashion_mnist_files[[1L]])))
    err <- NULL
    for (i in seq_along(urls)) {
      dest <- file.path(dest_dir, rk_fashion_mnist_files[[i]])
      if (file.exists(dest)) next
      err <- rk_download(urls[[i]], dest)
      if (!is.null(err)) {
        err <- paste0(urls[[i]], " (", err, ")")
        break
      }
    }
    if (is.null(err)) {
      res <- rk_try_source(dest_dir, rk_load_idx_set, "download")
      if (!is.null(res$data)) return(res$data)
      unlink(file.path(dest_dir, rk_fashion_mnist_files))
      tried <- c(tried, paste0("download: ", origin,
                               " (the downloaded files could not be read ",
                               "and were removed: ", res$reason, ")"))
    } else {
      tried <- c(tried, paste0("download: ", err))
    }
  } else {
    tried <- c(tried, paste0("download: ", origin, " (not tried: ",
                             "options(rkeras.allow_download = FALSE))"))
  }

  rk_dataset_fail("Fashion-MNIST", tried, c(
    paste0("On Debian or Ubuntu, install a local copy with ",
           "`apt-get install dataset-fashion-mnist`"),
    paste0("(it installs /usr/share/datasets/fashion-mnist), or connect to ",
           "the network, or copy the four files (",
           paste(rk_fashion_mnist_files, collapse = ", "), ") to ",
           cache_dir, ".")
  ))
}

# Sources ----------------------------------------------------------------------

# Try to load `path` with `loader`. Returns list(data, note, reason): `data`
# is NULL when the source is missing or unreadable; `note` describes what
# happened, for the final error message.
rk_try_source <- function(path, loader, label, exists = file.exists(path)) {
  if (!isTRUE(exists)) {
    return(list(data = NULL, reason = "not found",
                note = paste0(label, ": ", path, " (not found)")))
  }
  data <- tryCatch(loader(path), error = function(e) e)
  if (inherits(data, "error")) {
    reason <- conditionMessage(data)
    rkeras_warn(paste0("Skipping the unreadable ", label, " ", path, ": ",
                       reason), class = "rkeras_dataset_warning", call = NULL)
    return(list(data = NULL, reason = reason,
                note = paste0(label, ": ", path, " (unreadable: ", reason,
                              ")")))
  }
  list(data = data, reason = NULL, note = NULL)
}

rk_dataset_fail <- function(name, tried, advice) {
  rkeras_abort(c(
    paste0("Could not load the ", name, " dataset. Looked in:"),
    paste0("  - ", tried),
    advice
  ), class = "rkeras_dataset_error", call = NULL)
}

rk_is_absolute_path <- function(path) {
  grepl("^(/|~|[A-Za-z]:[/\\\\]|\\\\\\\\)", path)
}

# A writable location for `file`: its own folder if it can be created and
# written, otherwise the same name under tempdir() (as Keras falls back to
# /tmp/.keras).
rk_writable_cache_file <- function(file) {
  dir <- dirname(file)
  if (!dir.exists(dir)) suppressWarnings(dir.create(dir, recursive = TRUE))
  if (dir.exists(dir) && file.access(dir, 2L) == 0L) return(file)
  alt <- file.path(tempdir(), "keras-datasets", basename(dir))
  dir.create(alt, recursive = TRUE, showWarnings = FALSE)
  file.path(alt, basename(file))
}

# Download `url` to `dest`; NULL on success, else a short error message.
rk_download <- function(url, dest) {
  part <- paste0(dest, ".part")
  old <- options(timeout = max(600, getOption("timeout", 60)))
  on.exit({
    options(old)
    unlink(part)
  }, add = TRUE)
  rkeras_inform(paste0("Downloading data from ", url),
                class = "rkeras_download_message")
  status <- tryCatch(
    suppressWarnings(utils::download.file(url, part, mode = "wb",
                                          quiet = !interactive())),
    error = function(e) e)
  if (inherits(status, "error")) return(conditionMessage(status))
  if (!identical(as.integer(status), 0L)) {
    return(paste0("download.file() returned status ", status))
  }
  if (!file.rename(part, dest)) return(paste0("could not write ", dest))
  NULL
}

# Loaders ----------------------------------------------------------------------

rk_idx_file <- function(dir, name) {
  # `name` ends in .gz; accept an uncompressed copy as well.
  gz <- file.path(dir, name)
  if (file.exists(gz)) return(gz)
  plain <- file.path(dir, sub("\\.gz$", "", name))
  if (file.exists(plain)) return(plain)
  gz
}

rk_idx_set_exists <- function(dir) {
  all(file.exists(vapply(rk_fashion_mnist_files, rk_idx_file, "", dir = dir)))
}

# Load the four IDX files of an (Fashion-)MNIST set from `dir`.
rk_load_idx_set <- function(dir) {
  f <- vapply(rk_fashion_mnist_files, rk_idx_file, "", dir = dir)
  data <- list(
    train = list(x = rk_read_idx(f[["train_x"]]),
                 y = rk_read_idx(f[["train_y"]])),
    test = list(x = rk_read_idx(f[["test_x"]]),
                y = rk_read_idx(f[["test_y"]]))
  )
  rk_check_image_set(data)
}

rk_load_mnist_npz <- function(path) {
  arrays <- rk_read_npz(path)
  need <- c("x_train", "y_train", "x_test", "y_test")
  missing <- setdiff(need, names(arrays))
  if (length(missing)) {
    stop("the archive lacks ", paste(missing, collapse = ", "))
  }
  as_int <- function(a) {
    if (!is.integer(a)) storage.mode(a) <- "integer"
    a
  }
  data <- list(
    train = list(x = as_int(arrays$x_train), y = as_int(arrays$y_train)),
    test = list(x = as_int(arrays$x_test), y = as_int(arrays$y_test))
  )
  rk_check_image_set(data)
}

# Sanity checks of a loaded 28x28 image set; returns it unchanged.
rk_check_image_set <- function(data) {
  for (part in c("train", "test")) {
    x <- data[[part]]$x
    y <- data[[part]]$y
    if (length(dim(x)) != 3L || any(dim(x)[2:3] != 28L)) {
      stop(part, " images have shape ", rk_format_shape(dim(x)),
           ", expected (N, 28, 28)")
    }
    if (length(y) != dim(x)[1L]) {
      stop(part, " has ", dim(x)[1L], " images but ", length(y), " labels")
    }
    if (anyNA(y) || any(y < 0L | y > 9L)) stop(part, " labels outside 0-9")
    if (length(dim(y)) != 1L) y <- array(as.vector(y), dim = length(y))
    data[[part]]$y <- y
  }
  data
}

# Read an IDX file (optionally gzip-compressed): magic 0x00 0x00 <type>
# <ndim>, then ndim big-endian int32 sizes, then the data in row-major order.
# Only unsigned bytes (type 0x08) are used by (Fashion-)MNIST.
rk_read_idx <- function(path) {
  con <- gzfile(path, "rb")
  on.exit(close(con), add = TRUE)
  magic <- readBin(con, "raw", n = 4L)
  if (length(magic) != 4L || magic[[1L]] != as.raw(0L) ||
      magic[[2L]] != as.raw(0L)) {
    stop("'", basename(path), "' is not an IDX file")
  }
  type <- as.integer(magic[[3L]])
  ndim <- as.integer(magic[[4L]])
  if (type != 0x08L) {
    stop("'", basename(path), "': IDX data type 0x",
         format(as.hexmode(type), width = 2), " is not supported ",
         "(only unsigned bytes, 0x08)")
  }
  dims <- readBin(con, "integer", n = ndim, size = 4L, endian = "big")
  if (length(dims) != ndim || any(dims < 0L)) {
    stop("'", basename(path), "': truncated IDX header")
  }
  n <- prod(as.numeric(dims))
  values <- as.integer(readBin(con, "raw", n = n))
  if (length(values) != n) {
    stop("'", basename(path), "' is truncated: ", length(values), " of ", n,
         " values")
  }
  rk_from_c_order(values, dims)
}

# A row-major (C order) vector of values with the given dims, as an R array
# with the same index semantics. One dimension gives a 1-d array.
rk_from_c_order <- function(values, dims) {
  dims <- as.integer(dims)
  if (length(dims) <= 1L) {
    dim(values) <- if (length(dims)) dims else NULL
    return(values)
  }
  # Each of the dims[1] rows of the result is a contiguous block of
  # p = prod(dims[-1]) values: transpose into an (n, p) matrix whose column j
  # is row-major position j of the block, then reorder the columns into R's
  # column-major order of the trailing dims.
  p <- prod(dims[-1L])
  m <- t(matrix(values, nrow = p, ncol = dims[1L]))
  if (length(dims) > 2L) {
    rest <- dims[-1L]
    perm <- as.vector(aperm(array(seq_len(p), dim = rev(rest)),
                            rev(seq_along(rest))))
    m <- m[, perm, drop = FALSE]
  }
  dim(m) <- dims
  m
}

# Read all the .npy arrays of an .npz archive into a named list.
rk_read_npz <- function(path) {
  exdir <- tempfile("npz_")
  dir.create(exdir)
  on.exit(unlink(exdir, recursive = TRUE), add = TRUE)
  files <- tryCatch(utils::unzip(path, exdir = exdir),
                    warning = function(w) stop("not a readable zip archive"),
                    error = function(e) stop("not a readable zip archive"))
  files <- files[grepl("\\.npy$", files)]
  if (!length(files)) stop("no .npy arrays in the archive")
  arrays <- lapply(files, rk_read_npy)
  names(arrays) <- sub("\\.npy$", "", basename(files))
  arrays
}

# Read a NumPy .npy file (format versions 1-3): numeric and boolean dtypes of
# either byte order, C or Fortran order.
rk_read_npy <- function(path) {
  con <- file(path, "rb")
  on.exit(close(con), add = TRUE)
  magic <- readBin(con, "raw", n = 6L)
  if (!identical(magic, c(as.raw(0x93), charToRaw("NUMPY")))) {
    stop("'", basename(path), "' is not a .npy file")
  }
  version <- as.integer(readBin(con, "raw", n = 2L))
  header_len <- if (version[[1L]] == 1L) {
    readBin(con, "integer", n = 1L, size = 2L, signed = FALSE,
            endian = "little")
  } else {
    readBin(con, "integer", n = 1L, size = 4L, endian = "little")
  }
  header <- rawToChar(readBin(con, "raw", n = header_len))

  field <- function(key, pattern) {
    m <- regmatches(header, regexec(paste0("['\"]", key, "['\"]\\s*:\\s*",
                                           pattern), header))[[1L]]
    if (!length(m)) stop("'", basename(path), "': no '", key, "' in header")
    m[[2L]]
  }
  descr <- field("descr", "['\"]([^'\"]+)['\"]")
  fortran <- field("fortran_order", "(True|False)") == "True"
  shape_txt <- field("shape", "\\(([^)]*)\\)")
  dims <- trimws(strsplit(shape_txt, ",")[[1L]])
  dims <- as.numeric(dims[nzchar(dims)])

  order_char <- substr(descr, 1L, 1L)
  kind <- substr(descr, 2L, 2L)
  size <- as.integer(substr(descr, 3L, nchar(descr)))
  endian <- if (order_char == ">") "big" else "little"
  n <- if (length(dims)) prod(dims) else 1
  values <- switch(
    kind,
    u = {
      if (!size %in% c(1L, 2L)) {
        if (size %in% c(4L, 8L)) {
          v <- readBin(con, "integer", n = n, size = size, endian = endian)
          if (any(v < 0L, na.rm = TRUE)) stop("unsigned values too large")
          v
        } else stop("unsupported dtype '", descr, "'")
      } else if (size == 1L) {
        as.integer(readBin(con, "raw", n = n))
      } else readBin(con, "integer", n = n, size = size, signed = FALSE,
                     endian = endian)
    },
    i = {
      if (!size %in% c(1L, 2L, 4L, 8L)) stop("unsupported dtype '", descr, "'")
      readBin(con, "integer", n = n, size = size, endian = endian)
    },
    f = {
      if (!size %in% c(4L, 8L)) stop("unsupported dtype '", descr, "'")
      readBin(con, "double", n = n, size = size, endian = endian)
    },
    b = as.logical(readBin(con, "integer", n = n, size = 1L, signed = FALSE)),
    stop("unsupported dtype '", descr, "'")
  )
  if (length(values) != n) {
    stop("'", basename(path), "' is truncated: ", length(values), " of ", n,
         " values")
  }
  if (fortran) {
    if (length(dims) > 1L) dim(values) <- dims
    else if (length(dims) == 1L) dim(values) <- dims
    values
  } else {
    rk_from_c_order(values, dims)
  }
}
