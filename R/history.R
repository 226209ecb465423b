# The object returned by fit(): class "keras_training_history", a list with
# `params` (list(verbose, epochs, steps)) and `metrics` (named list of numeric
# vectors, one value per epoch), with print(), plot() and as.data.frame()
# methods that behave as keras3's.

# Internal constructor, used by fit().
#
# `params`: list with (at least) `verbose`, `epochs` and `steps`.
# `metrics`: named list of numeric vectors in Keras log order (e.g. loss,
#   accuracy, val_loss, val_accuracy); shorter vectors are padded with NA to
#   the length of the longest one.
new_training_history <- function(params = list(), metrics = list()) {
  if (!is.list(params)) {
    rkeras_abort("`params` must be a list.")
  }
  if (!is.list(metrics) || (length(metrics) && is.null(names(metrics))) ||
      any(!nzchar(names(metrics)))) {
    rkeras_abort("`metrics` must be a named list of numeric vectors.")
  }
  metrics <- lapply(metrics, function(m) as.numeric(unlist(m)))
  if (length(metrics)) {
    rows <- max(lengths(metrics))
    metrics <- lapply(metrics, function(m) {
      if (length(m) < rows) c(m, rep(NA_real_, rows - length(m))) else m
    })
  }
  structure(list(params = params, metrics = metrics),
            class = "keras_training_history")
}

# Number of epochs that have values.
rk_history_epochs_trained <- function(x) {
  if (!length(x$metrics)) return(0L)
  n <- length(x$metrics[[1L]])
  if (!is.null(x$params$epochs)) n <- min(as.integer(x$params$epochs), n)
  n
}

#' @export
print.keras_training_history <- function(x, ...) {
  epochs <- rk_history_epochs_trained(x)
  params <- x$params

  out <- ""
  if (!is.null(params$samples)) {
    fmt <- function(v) prettyNum(v, big.mark = ",")
    out <- paste0("Trained on ", fmt(params$samples), " samples")
    if (!is.null(params$validation_samples)) {
      out <- paste0(out, ", validated on ", fmt(params$validation_samples),
                    " samples")
    }
    out <- paste0(out, " (batch_size=", fmt(params$batch_size),
                  ", epochs=", fmt(epochs), ")")
  }

  if (epochs < 1L) {
    cat(out, "\nNo epochs were trained.", "\n")
    return(invisible(x))
  }

  values <- vapply(x$metrics, function(m) {
    format(m[[epochs]], digits = 4, big.mark = ",", scientific = FALSE)
  }, character(1))
  labels <- formatC(names(x$metrics), width = max(nchar(names(x$metrics))))
  out <- paste0(out, "\n", "Final epoch (plot to see history):\n",
                paste0(labels, ": ", values, collapse = "\n"))
  cat(out, "\n")
  invisible(x)
}

#' @export
as.data.frame.keras_training_history <- function(x, ...) {
  metrics <- x$metrics
  names_all <- names(metrics)
  n <- max(c(as.integer(x$params$epochs), lengths(metrics), 0L))
  values <- unlist(lapply(metrics, function(m) {
    c(m, rep(NA_real_, n - length(m)))
  }), use.names = FALSE)
  if (is.null(values)) values <- numeric()
  is_val <- grepl("^val_", names_all)
  base <- sub("^val_", "", names_all)
  df <- data.frame(
    epoch = rep(seq_len(n), times = length(metrics)),
    value = as.numeric(values),
    metric = factor(rep(base, each = n), levels = unique(base)),
    data = factor(rep(ifelse(is_val, "validation", "training"), each = n),
                  levels = c("training", "validation")),
    stringsAsFactors = FALSE
  )
  rownames(df) <- NULL
  df
}

#' Plot training history
#'
#' Plots the metrics recorded by `fit()`, one panel per metric, with training
#' and validation values in different colours (validation values are those
#' whose names start with `val_`).
#'
#' @param x A `keras_training_history` object, as returned by `fit()`.
#' @param y Unused.
#' @param metrics One or more metrics to plot (e.g. `c("loss", "accuracy")`).
#'   Defaults to all recorded metrics.
#' @param method `"auto"` (the default) uses \pkg{ggplot2} when it is
#'   installed and base graphics otherwise; `"ggplot2"` and `"base"` force one.
#' @param smooth Whether to add a loess smooth line (ggplot2 method only; only
#'   drawn when there are at least 10 epochs).
#' @param theme_bw Whether to use [ggplot2::theme_bw()] (black and white, with
#'   line types and point shapes distinguishing training and validation).
#' @param ... Further arguments passed to [plot()] (base method).
#'
#' @return With the ggplot2 method, a `ggplot` object (printing it draws the
#'   plot). With the base method, `x`, invisibly, after drawing.
#'
#' @examples
#' history <- rkeras:::new_training_history(
#'   params = list(verbose = 0L, epochs = 12L, steps = 10L),
#'   metrics = list(loss = exp(-(1:12) / 4), accuracy = 1 - exp(-(1:12) / 3) / 2,
#'                  val_loss = exp(-(1:12) / 5), val_accuracy = 0.9 - exp(-(1:12) / 3) / 2)
#' )
#' history
#' head(as.data.frame(history))
#' plot(history, method = "base")
#' if (requireNamespace("ggplot2", quietly = TRUE)) plot(history)
#' @export
plot.keras_training_history <- function(x, y, metrics = NULL,
                                        method = c("auto", "ggplot2", "base"),
                                        smooth = getOption("keras.plot.history.smooth", TRUE),
                                        theme_bw = getOption("keras.plot.history.theme_bw", FALSE),
                                        ...) {
  method <- match.arg(method)
  has_ggplot2 <- requireNamespace("ggplot2", quietly = TRUE)
  if (method == "auto") method <- if (has_ggplot2) "ggplot2" else "base"
  if (method == "ggplot2" && !has_ggplot2) {
    rkeras_abort(paste0("`method = \"ggplot2\"` needs the ggplot2 package; ",
                        "install it or use `method = \"base\"`."))
  }

  df <- as.data.frame(x)
  available <- levels(df$metric)
  if (is.null(metrics)) {
    metrics <- available
  } else {
    metrics <- sub("^val_", "", as.character(metrics))
    unknown <- setdiff(metrics, available)
    if (length(unknown)) {
      rkeras_abort(paste0(
        "Unknown metric(s) ", paste0('"', unknown, '"', collapse = ", "),
        "; the history has: ", paste0('"', available, '"', collapse = ", "),
        "."))
    }
    metrics <- unique(metrics)
  }
  df <- df[df$metric %in% metrics, , drop = FALSE]
  df$metric <- factor(as.character(df$metric), levels = metrics)
  do_validation <- any(df$data == "validation")
  n_epochs <- if (nrow(df)) max(df$epoch) else 0L

  if (method == "ggplot2") {
    rk_plot_history_ggplot(df, do_validation, n_epochs, smooth, theme_bw)
  } else {
    rk_plot_history_base(df, metrics, do_validation, ...)
    invisible(x)
  }
}

rk_plot_history_ggplot <- function(df, do_validation, n_epochs, smooth,
                                   theme_bw) {
  mapping <- list(x = as.name("epoch"), y = as.name("value"))
  if (do_validation) {
    mapping$colour <- mapping$fill <- as.name("data")
    if (theme_bw) mapping$linetype <- mapping$shape <- as.name("data")
  }
  aes_ <- do.call(ggplot2::aes, mapping)
  p <- ggplot2::ggplot(df, aes_)

  if (theme_bw) {
    p <- p + ggplot2::theme_bw() +
      ggplot2::geom_point(colour = "black", size = 2, na.rm = TRUE) +
      ggplot2::scale_shape(solid = FALSE)
  } else {
    p <- p + ggplot2::geom_point(shape = 21, colour = "black", na.rm = TRUE)
  }

  if (isTRUE(smooth) && n_epochs >= 10) {
    smooth_args <- list(method = "loess", formula = y ~ x, se = FALSE,
                        na.rm = TRUE)
    if (theme_bw) {
      smooth_args$linewidth <- 0.5
      smooth_args$colour <- "gray47"
    }
    p <- p + do.call(ggplot2::geom_smooth, smooth_args)
  }

  whole_breaks <- function(lims) {
    b <- pretty(lims)
    b[b %% 1 == 0]
  }
  p +
    ggplot2::facet_grid(metric ~ ., switch = "y", scales = "free_y") +
    ggplot2::scale_x_continuous(breaks = whole_breaks) +
    ggplot2::theme(
      axis.title.y = ggplot2::element_blank(),
      strip.placement = "outside",
      strip.text = ggplot2::element_text(colour = "black", size = 11),
      strip.background = ggplot2::element_rect(fill = NA, colour = NA)
    )
}

rk_plot_history_base <- function(df, metrics, do_validation, ...) {
  old <- graphics::par(mfrow = c(length(metrics), 1L), mar = c(3, 3, 2, 2),
                       mgp = c(2, 0.7, 0))
  on.exit(graphics::par(old), add = TRUE)
  cols <- c(training = "#F8766D", validation = "#00BFC4")
  for (i in seq_along(metrics)) {
    metric <- metrics[[i]]
    first <- i == 1L
    last <- i == length(metrics)
    graphics::par(mar = if (first && last) c(3, 3, 1.5, 1.5)
                  else if (first) c(1.5, 3, 1.5, 1.5)
                  else if (last) c(3, 3, 0.5, 1.5)
                  else c(1.5, 3, 0.5, 1.5))
    d <- df[df$metric == metric & !is.na(df$value), , drop = FALSE]
    if (!nrow(d)) {
      graphics::plot.new()
      next
    }
    graphics::plot(d$epoch, d$value, type = "n",
                   xaxt = if (last) "s" else "n", xlab = "epoch",
                   ylab = metric, ...)
    for (set in c("training", "validation")) {
      s <- d[d$data == set, , drop = FALSE]
      if (!nrow(s)) next
      s <- s[order(s$epoch), , drop = FALSE]
      graphics::lines(s$epoch, s$value, col = cols[[set]])
      graphics::points(s$epoch, s$value, col = cols[[set]],
                       pch = if (set == "training") 1 else 4)
    }
    tr <- d$value[d$data == "training"]
    where <- if (length(tr) > 1L && tr[1L] > tr[length(tr)]) "topright"
             else "bottomright"
    if (do_validation) {
      graphics::legend(where, legend = c(metric, paste0("val_", metric)),
                       pch = c(1, 4), col = cols, bty = "n")
    } else {
      graphics::legend(where, legend = metric, pch = 1, col = cols[[1L]],
                       bty = "n")
    }
  }
  invisible(NULL)
}
