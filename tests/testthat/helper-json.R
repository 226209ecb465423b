# A minimal JSON reader for the test fixtures (jsonlite is not a dependency of rkeras),
# plus helpers that turn the conformance fixtures' arrays into R arrays.

# Parse JSON text into R values: objects -> named lists, arrays -> lists, numbers -> double,
# true/false -> logical, null -> NULL. Enough for the conformance case.json files.
json_parse <- function(text) {
  text <- paste(text, collapse = "\n")
  pattern <- paste0(
    '"(?:[^"\\\\]|\\\\.)*"',                              # string
    "|-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", # number
    "|true|false|null|NaN|-?Infinity",                    # literals
    "|[][{}:,]"                                           # punctuation
  )
  tokens <- regmatches(text, gregexpr(pattern, text, perl = TRUE))[[1L]]
  pos <- 1L
  n <- length(tokens)
  peek <- function() if (pos <= n) tokens[[pos]] else ""
  take <- function() {
    if (pos > n) stop("json_parse: unexpected end of input")
    tok <- tokens[[pos]]
    pos <<- pos + 1L
    tok
  }
  expect_tok <- function(tok) {
    got <- take()
    if (!identical(got, tok)) stop(sprintf("json_parse: expected '%s', got '%s'", tok, got))
  }
  unquote <- function(tok) {
    s <- substr(tok, 2L, nchar(tok) - 1L)
    if (!grepl("\\", s, fixed = TRUE)) return(s)
    s <- gsub("\\\\u([0-9a-fA-F]{4})", "\\\\U\\1", s)
    # Let R's parser handle the escapes (\n, \", \\, \uXXXX).
    eval(parse(text = paste0('"', gsub("\\\\/", "/", s), '"')))
  }
  value <- function() {
    tok <- take()
    switch(tok,
      "{" = {
        out <- list()
        keys <- character()
        if (peek() == "}") { take(); return(structure(list(), names = character())) }
        repeat {
          key <- unquote(take())
          expect_tok(":")
          v <- value()
          out[length(out) + 1L] <- list(v)
          keys <- c(keys, key)
          sep <- take()
          if (sep == "}") break
          if (sep != ",") stop("json_parse: expected ',' or '}' in object")
        }
        names(out) <- keys
        out
      },
      "[" = {
        out <- list()
        if (peek() == "]") { take(); return(out) }
        repeat {
          v <- value()
          out[length(out) + 1L] <- list(v)
          sep <- take()
          if (sep == "]") break
          if (sep != ",") stop("json_parse: expected ',' or ']' in array")
        }
        out
      },
      "true" = TRUE,
      "false" = FALSE,
      "null" = NULL,
      "NaN" = NaN,
      "Infinity" = Inf,
      "-Infinity" = -Inf,
      {
        if (startsWith(tok, '"')) unquote(tok) else as.numeric(tok)
      }
    )
  }
  out <- value()
  if (pos <= n) stop("json_parse: trailing tokens after the JSON value")
  out
}

json_read <- function(path) json_parse(readLines(path, warn = FALSE))

# The conformance fixtures folder (../shared/conformance/fixtures beside the project), or NULL.
conformance_dir <- function() {
  candidates <- c(
    Sys.getenv("RKERAS_CONFORMANCE_DIR"),
    file.path(testthat::test_path(), "..", "..", "..", "shared", "conformance", "fixtures"),
    "/work/shared/conformance/fixtures"
  )
  for (d in candidates) {
    if (nzchar(d) && file.exists(file.path(d, "index.json"))) return(normalizePath(d))
  }
  NULL
}

# Reads fixtures/<id>/case.json, skipping the test when the fixtures are not available.
conformance_case <- function(id) {
  dir <- conformance_dir()
  if (is.null(dir)) testthat::skip("conformance fixtures not available")
  path <- file.path(dir, id, "case.json")
  if (!file.exists(path)) testthat::skip(paste("conformance case missing:", id))
  json_read(path)
}

# A fixture array {name, shape, dtype, data (row-major)} as an R array with dim = shape
# (element [i, j, k] of the result is element (i-1, j-1, k-1) of the fixture).
fixture_array <- function(a) {
  data <- vapply(a$data, function(v) if (is.null(v)) NA_real_ else as.numeric(v), numeric(1))
  shape <- vapply(a$shape, as.integer, integer(1))
  if (length(shape) == 0L) return(data)
  if (length(shape) == 1L) return(array(data, dim = shape))
  aperm(array(data, dim = rev(shape)), rev(seq_along(shape)))
}

# The case's weights as R arrays, in the case's (manifest) order, named by weight name.
fixture_weights <- function(case) {
  w <- lapply(case$weights, fixture_array)
  names(w) <- vapply(case$weights, function(x) x$name, character(1))
  w
}

# Compares with the case's tolerance: |actual - expected| <= atol + rtol * |expected|.
expect_fixture_equal <- function(actual, expected, tolerance = list(atol = 1e-5, rtol = 1e-4)) {
  atol <- if (is.null(tolerance$atol)) 1e-5 else tolerance$atol
  rtol <- if (is.null(tolerance$rtol)) 1e-4 else tolerance$rtol
  actual <- as.array(actual)
  testthat::expect_equal(dim(actual), dim(expected))
  err <- abs(as.numeric(actual) - as.numeric(expected))
  bound <- atol + rtol * abs(as.numeric(expected))
  worst <- if (length(err)) max(err - bound) else -Inf
  testthat::expect_true(all(err <= bound),
                        info = sprintf("max excess over tolerance: %g (max abs err %g)",
                                       worst, if (length(err)) max(err) else 0))
}
