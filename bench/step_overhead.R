# The per-step framework overhead of ../shared/bench/step_overhead.py, in rkeras: a model so small
# (Dense 10 -> 10, batch 32, 110 parameters, Adam lr 1e-3, softmax cross-entropy on logits) that the
# arithmetic is negligible and what remains is the cost of one training step.
#
#   step_adam_fit    one step inside fit()'s C++ loop: fit() for one epoch over 60000 rows of 10
#                    features in batches of 32 (1875 steps: batch gather by shuffled row index,
#                    forward, loss, backward, Adam update, loss/metric trackers), wall time / 1875.
#                    The analogue of torch's step_adam_batch (random batch from a 60000-row tensor).
#                    The fit() call's fixed costs (argument checks, data conversion, shuffling in R)
#                    are included, so this slightly overstates the per-step cost.
#   train_on_batch   one train_on_batch(model, x, y) call from R on a 32-row batch (R call, data
#                    checks and conversion, step, logs back to R): the analogue of torch's step_adam
#                    (a Python-level step on a fixed batch).
# Each: median/min/max in microseconds over 7 samples after warm-up, as step_overhead.py.
# Prints CSV lines "framework,case,threads,median_us,min_us,max_us".
#
# Usage: Rscript bench/step_overhead.R [--threads 2]
suppressPackageStartupMessages(library(rkeras))

args <- commandArgs(trailingOnly = TRUE)
i <- match("--threads", args)
threads <- if (is.na(i)) 2L else as.integer(args[[i + 1L]])
config_set_num_threads(threads)
set.seed(0)

X <- matrix(rnorm(60000 * 10), ncol = 10)
Y <- sample.int(10L, 60000L, replace = TRUE) - 1L
x <- matrix(rnorm(32 * 10), ncol = 10)
y <- sample.int(10L, 32L, replace = TRUE) - 1L

model <- keras_model_sequential(input_shape = 10) |> layer_dense(10)
model |> compile(optimizer = optimizer_adam(learning_rate = 1e-3),
                 loss = loss_sparse_categorical_crossentropy(from_logits = TRUE))

hires <- function() as.numeric(Sys.time())
stats_us <- function(us) {
  s <- sort(us)
  c(s[4L], s[1L], s[7L])
}
report <- function(case, us) {
  cat(sprintf("rkeras-%s,%s,%d,%.2f,%.2f,%.2f\n", packageVersion("rkeras"), case, config_num_threads(),
              us[1], us[2], us[3]))
}

# fit(): one epoch of 1875 steps per sample
steps <- ceiling(nrow(X) / 32)
fit_epoch <- function() {
  t <- hires()
  fit(model, X, Y, batch_size = 32L, epochs = 1L, verbose = 0)
  (hires() - t) / steps * 1e6
}
invisible(fit_epoch())
report("step_adam_fit", stats_us(vapply(1:7, function(i) fit_epoch(), numeric(1))))

# train_on_batch(): calls per sample sized to ~0.2 s, as step_overhead.py
for (k in 1:200) train_on_batch(model, x, y)
t0 <- hires()
n <- 0L
while (hires() - t0 < 0.05) {
  train_on_batch(model, x, y)
  n <- n + 1L
}
reps <- max(10L, as.integer(n * 0.2 / 0.05))
tob <- vapply(1:7, function(i) {
  t <- hires()
  for (k in seq_len(reps)) train_on_batch(model, x, y)
  (hires() - t) / reps * 1e6
}, numeric(1))
report("train_on_batch", stats_us(tob))
