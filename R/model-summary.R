# summary() / print() / format() of models in keras3's layout: Keras 3's rich table (box
# drawing characters), column widths computed as Keras's print_summary() and rich compute them,
# so the text matches keras3's output line for line.

#' Print a summary of a Keras model
#'
#' Shows each layer's name and class, output shape and parameter count in the table keras3
#' prints (functional models with branches add a "Connected to" column), followed by the total,
#' trainable and non-trainable parameter counts with their memory size. Models that are not
#' built yet show `?` shapes and `0 (unbuilt)`.
#'
#' @param object,x A Keras model.
#' @param line_length Total width of the table. The default is Keras's (88, or 108 with a
#'   "Connected to" column), but at most `getOption("width") - 4`.
#' @param positions Relative (or absolute) right edges of the columns.
#' @param expand_nested Not supported yet (nested models are shown as one row).
#' @param show_trainable Add a "Trainable" column; `NA` (default) shows it when the model is
#'   built and has non-trainable weights.
#' @param ... For `summary()` and `print()`, passed on to `format()`.
#' @param layer_range Not supported yet.
#' @param compact Remove blank lines (always none here).
#' @return `format()`: the summary as one string. `print()`: `x`, invisibly. `summary()`: the
#'   string, invisibly, after printing it.
#' @examples
#' model <- keras_model_sequential(input_shape = 784) |>
#'   layer_dense(256, activation = "relu") |>
#'   layer_dense(10, activation = "softmax")
#' summary(model)
#' @name summary.keras.src.models.model.Model
#' @export
summary.keras.src.models.model.Model <- function(object, ...) {
  f <- format.keras.src.models.model.Model(object, ...)
  writeLines(f)
  invisible(f)
}

#' @rdname summary.keras.src.models.model.Model
#' @export
format.keras.src.models.model.Model <- function(x, line_length = NULL, positions = NULL,
                                                expand_nested = FALSE, show_trainable = NA, ...,
                                                layer_range = NULL, compact = TRUE) {
  st <- rk_state(x)
  if (is.na(show_trainable))
    show_trainable <- rk_model_is_built(st) && length(rk_layer_non_trainable_weights(st)) > 0L
  rk_check_flag(show_trainable, "show_trainable")
  lines <- rk_summary_lines(st, line_length = line_length, positions = positions,
                            show_trainable = show_trainable)
  if (compact) lines <- lines[nzchar(trimws(lines))]
  paste(lines, collapse = "\n")
}

#' @rdname summary.keras.src.models.model.Model
#' @export
print.keras.src.models.model.Model <- function(x, ...) {
  writeLines(format.keras.src.models.model.Model(x, ...))
  invisible(x)
}

# ---- rows --------------------------------------------------------------------------------------

rk_summary_sequential_like <- function(st) {
  if (!identical(st$model_type, "functional")) return(TRUE)
  for (nds in st$nodes_by_depth) {
    if (length(nds) > 1L) return(FALSE)
    if (length(nds) == 1L && length(nds[[1L]]$node$inputs) > 1L) return(FALSE)
  }
  # a layer applied twice inside the model (shared layer) is not sequential either
  keys <- st$node_keys
  for (o in st$op_states) {
    mine <- vapply(seq_along(o$nodes) - 1L, function(i) rk_node_key(o, i), "")
    if (sum(mine %in% keys) > 1L) return(FALSE)
  }
  TRUE
}

rk_format_out_shapes <- function(shapes) {
  if (length(shapes) == 1L) return(rk_shape_summary(shapes[[1L]]))
  paste0("[", paste(vapply(shapes, rk_shape_summary, ""), collapse = ", "), "]")
}

# Output shape column of a layer: from its last call (Keras uses the last inbound node), else
# from its build shapes, else "?".
rk_summary_layer_shape <- function(ls) {
  if (length(ls$nodes)) {
    outs <- ls$nodes[[length(ls$nodes)]]$outputs
    return(rk_format_out_shapes(lapply(outs, function(t) t$shape)))
  }
  if (isTRUE(ls$is_model)) {
    if (!rk_model_is_built(ls)) return("?")
    return(rk_format_out_shapes(lapply(rk_model_output_specs(ls$self), function(s) s$shape)))
  }
  if (isTRUE(ls$built) && !is.null(ls$build_shapes)) {
    out <- tryCatch(rk_layer_infer(ls, ls$build_shapes), error = function(e) NULL)
    if (!is.null(out)) return(rk_format_out_shapes(out))
  }
  "?"
}

rk_summary_connections <- function(st, ls) {
  keys <- st$node_keys
  out <- character()
  for (i in seq_along(ls$nodes)) {
    if (!(rk_node_key(ls, i - 1L) %in% keys)) next
    for (t in ls$nodes[[i]]$inputs)
      out <- c(out, sprintf("%s[%d][%d]", t$history$op$name, t$history$node_index, t$history$tensor_index))
  }
  if (!length(out)) "-" else paste(out, collapse = ", ")
}

rk_summary_rows <- function(st, sequential_like, show_trainable) {
  layer_states <- rk_model_layer_states(st)
  lapply(layer_states, function(ls) {
    name <- sprintf("%s (%s)", ls$name, ls$class_name)
    params <- if (!rk_layer_is_built(ls)) "0 (unbuilt)" else
      formatC(rk_count_weights(rk_layer_all_weights(ls)), format = "d", big.mark = ",")
    row <- c(name, rk_summary_layer_shape(ls), params)
    if (!sequential_like) row <- c(row, rk_summary_connections(st, ls))
    if (show_trainable)
      row <- c(row, if (length(rk_layer_all_weights(ls))) (if (isTRUE(ls$trainable)) "Y" else "N") else "-")
    row
  })
}

# ---- the table ---------------------------------------------------------------------------------

rk_summary_lines <- function(st, line_length = NULL, positions = NULL, show_trainable = FALSE) {
  sequential_like <- rk_summary_sequential_like(st)
  if (sequential_like) {
    default_len <- 88
    pos <- positions %||% c(0.45, 0.80, 1.0)
    header <- c("Layer (type)", "Output Shape", "Param #")
  } else {
    default_len <- 108
    pos <- positions %||% c(0.3, 0.56, 0.74, 1.0)
    header <- c("Layer (type)", "Output Shape", "Param #", "Connected to")
  }
  if (show_trainable) {
    default_len <- default_len + 12
    pos <- c(pos * 0.90, 1.0)
    header <- c(header, "Trainable")
  }
  align <- c("left", "left", "right", "left", "center")[seq_along(header)]
  if (show_trainable) align[length(align)] <- "center"
  if (is.null(line_length)) line_length <- min(default_len, getOption("width", 80L) - 4L)
  if (!is.numeric(line_length) || length(line_length) != 1L || is.na(line_length) || line_length < 10)
    rk_abort("`line_length` must be a number >= 10", "rkeras_value_error")
  line_length <- as.integer(line_length)
  if (all(pos <= 1)) pos <- trunc(pos * line_length)
  widths <- diff(c(0, pos))
  if (length(widths) != length(header))
    rk_abort(sprintf("`positions` must have %d entries", length(header)), "rkeras_value_error")
  if (any(widths < 4))
    rk_abort("Insufficient console width to print summary.", "rkeras_value_error")
  widths <- rk_rich_widths(widths, line_length)
  rows <- rk_summary_rows(st, sequential_like, show_trainable)

  out <- sprintf("Model: \"%s\"", st$name)
  out <- c(out, rk_box_rule(widths, "\u250f", "\u2501", "\u2533", "\u2513"))
  out <- c(out, rk_box_row(header, widths, align, "\u2503"))
  out <- c(out, rk_box_rule(widths, "\u2521", "\u2501", "\u2547", "\u2529"))
  for (i in seq_along(rows)) {
    out <- c(out, rk_box_row(rows[[i]], widths, align, "\u2502"))
    if (i < length(rows)) out <- c(out, rk_box_rule(widths, "\u251c", "\u2500", "\u253c", "\u2524"))
  }
  out <- c(out, rk_box_rule(widths, "\u2514", "\u2500", "\u2534", "\u2518"))

  all_w <- rk_layer_all_weights(st)
  tr_w <- rk_layer_trainable_weights(st)
  nt_w <- rk_layer_non_trainable_weights(st)
  out <- c(out,
           rk_summary_count_line("Total params", all_w),
           rk_summary_count_line("Trainable params", tr_w),
           rk_summary_count_line("Non-trainable params", nt_w))
  if (rk_has_fn("rk_model_optimizer_params")) {
    op <- get("rk_model_optimizer_params", envir = asNamespace("rkeras"))(st$self)
    if (!is.null(op))
      out <- c(out, sprintf(" Optimizer params: %s (%s)", formatC(op$count, format = "d", big.mark = ","),
                            rk_readable_size(op$bytes)))
  }
  out
}

rk_summary_count_line <- function(label, vars) {
  n <- sum(vapply(vars, function(v) prod(as.numeric(v$shape)), 0))
  bytes <- sum(vapply(vars, function(v) prod(as.numeric(v$shape)) * rk_dtype_bytes(v$dtype), 0))
  sprintf(" %s: %s (%s)", label, formatC(n, format = "d", big.mark = ","), rk_readable_size(bytes))
}

rk_dtype_bytes <- function(dtype) switch(dtype, float64 = 8, float32 = 4, int32 = 4, bool = 1, float16 = 2, bfloat16 = 2, 4)

# Keras's readable_memory_size(): "918.54 KB".
rk_readable_size <- function(bytes) {
  units <- c("B", "KB", "MB", "GB", "TB", "PB")
  for (u in units) {
    if (bytes / 1024 < 1) return(sprintf("%.2f %s", bytes, u))
    bytes <- bytes / 1024
  }
  sprintf("%.2f %s", bytes, "PB")
}

# rich's column widths for fixed-width columns (+2 padding each) in a table of total width
# `line_length` with borders: reduced evenly (ratio_reduce, Python's half-to-even round()).
rk_rich_widths <- function(widths, line_length) {
  measured <- widths + 2L
  avail <- line_length - (length(widths) + 1L)
  excess <- sum(measured) - avail
  if (excess > 0) {
    total_ratio <- length(measured)
    remaining <- excess
    for (i in seq_along(measured)) {
      d <- min(measured[i], round(remaining / total_ratio))
      measured[i] <- measured[i] - d
      remaining <- remaining - d
      total_ratio <- total_ratio - 1
    }
  } else if (excess < 0) {
    # rich's ratio_distribute(): widen proportionally (ceil) to fill the table width
    total_ratio <- sum(measured)
    remaining <- -excess
    add <- numeric(length(measured))
    for (i in seq_along(measured)) {
      d <- if (total_ratio > 0) ceiling(measured[i] * remaining / total_ratio) else remaining
      add[i] <- d
      total_ratio <- total_ratio - measured[i]
      remaining <- remaining - d
    }
    measured <- measured + add
  }
  as.integer(measured)
}

rk_box_rule <- function(widths, left, fill, mid, right) {
  paste0(left, paste(vapply(widths, function(w) strrep(fill, w), ""), collapse = mid), right)
}

# One table row (several lines when a cell wraps); cells get one space of padding each side.
rk_box_row <- function(cells, widths, align, sep) {
  wrapped <- lapply(seq_along(cells), function(i) rk_wrap_cell(cells[[i]], widths[i] - 2L))
  h <- max(lengths(wrapped))
  vapply(seq_len(h), function(k) {
    parts <- vapply(seq_along(cells), function(i) {
      txt <- if (k <= length(wrapped[[i]])) wrapped[[i]][k] else ""
      paste0(" ", rk_pad(txt, widths[i] - 2L, align[i]), " ")
    }, "")
    paste0(sep, paste(parts, collapse = sep), sep)
  }, "")
}

rk_pad <- function(txt, width, align) {
  n <- nchar(txt, type = "width")
  gap <- max(0L, width - n)
  switch(align,
    right = paste0(strrep(" ", gap), txt),
    center = paste0(strrep(" ", gap %/% 2L), txt, strrep(" ", gap - gap %/% 2L)),
    paste0(txt, strrep(" ", gap)))
}

# Greedy word wrap as rich does it for table cells (overflow "ellipsis"): break at spaces; a
# word longer than the width gets a line of its own, cut to the width with a trailing "\u2026".
rk_wrap_cell <- function(text, width) {
  width <- max(1L, width)
  if (nchar(text) <= width) return(text)
  words <- strsplit(text, " ", fixed = TRUE)[[1L]]
  lines <- character()
  cur <- NULL
  for (w in words) {
    if (!is.null(cur)) {
      cand <- paste(cur, w)
      if (nchar(cur) <= width && nchar(cand) <= width) {
        cur <- cand
        next
      }
      lines <- c(lines, cur)
    }
    cur <- w
  }
  lines <- c(lines, cur)
  long <- nchar(lines) > width
  lines[long] <- paste0(substr(lines[long], 1L, width - 1L), "\u2026")
  lines
}
