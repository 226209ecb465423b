# The Fashion-MNIST MLP workload of ../shared/bench/train_torch.py (--models mlp), in rkeras.
#
# Same data (dataset_fashion_mnist(), x / 255, flattened to 784), model (784-256 relu-128 relu-10
# logits), initialisers (Keras defaults: glorot_uniform kernels, zero biases), loss (softmax
# cross-entropy on logits), optimizer (Adam lr 1e-3, eps 1e-7), batch 128, epochs (5), threads.
#
# Measured as the PyTorch script measures it:
#   train samples/s  median (and min/max) over chunks of 10 batches after 5 warm-up batches. Each
#                    batch is timed from one on_train_batch_end callback to the next (so the time
#                    includes the gather, forward, loss, backward, Adam step, metric update AND the
#                    trip back into R for the callback: a little against rkeras). This runs in a
#                    separate timing fit (2 epochs, fresh model), because a batch-level callback is
#                    not what an ordinary fit() does.
#   epoch time       wall time of each of the 5 epochs of the main fit() (callback_lambda from
#                    on_epoch_begin to on_test_begin, no batch hooks: the ordinary fit() path),
#                    evaluation not included.
#   inference        samples/s of predict(model, x, batch_size = 1000) on the 10k test images,
#                    median/min/max of 5 passes after one warm-up pass. infer_sps_*: x is the test
#                    set already converted to an engine tensor (rk_tensor(x_test)), as torch's loop
#                    has it in a torch tensor; infer_r_array_sps_*: x is the R array (conversion of
#                    7.8M doubles and the NA/Inf check included). Output is an R array in both.
#   test accuracy    after each epoch (fit()'s validation on the 10k test set).
#   memory           VmRSS after data load, peak RSS (VmHWM) at the end (whole process, as torch's);
#                    peak_rss_train_mb: the peak from the end of data preparation on (VmHWM reset
#                    through /proc/self/clear_refs), i.e. without R's double-precision copies of the
#                    data made while loading.
# Prints one line "RESULT {json}" with the train_torch.py field names.
#
# Usage: Rscript bench/mlp.R [--threads 2] [--epochs 5] [--timing-epochs 2]
suppressPackageStartupMessages(library(rkeras))

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1L])), "common.R"))
threads <- as.integer(opt("threads", 2))
epochs <- as.integer(opt("epochs", 5))
timing_epochs <- as.integer(opt("timing-epochs", 2))
BATCH <- 128L
CHUNK <- 10L
WARMUP <- 5L

now <- function() proc.time()[["elapsed"]]

config_set_num_threads(threads)
set.seed(0)

t0 <- hires()
fm <- dataset_fashion_mnist()
x_train <- array_reshape(fm$train$x / 255, c(nrow(fm$train$x), 784L))
x_test <- array_reshape(fm$test$x / 255, c(nrow(fm$test$x), 784L))
y_train <- fm$train$y
y_test <- fm$test$y
rm(fm)
invisible(gc())
data_load_s <- hires() - t0
rss_after_data <- proc_status("VmRSS")
hwm_data <- proc_status("VmHWM")
hwm_reset <- tryCatch({
  writeLines("5", "/proc/self/clear_refs")
  TRUE
}, error = function(e) FALSE, warning = function(w) FALSE)

build <- function() {
  compile_bench(mnist_mlp(), metrics = "accuracy")
}

# ---- main run: one fit() of 5 epochs with the test set as validation data (test accuracy after
# each epoch, as torch's loop); the epoch time runs from on_epoch_begin to on_test_begin, so it
# leaves the evaluation out, as torch's does.
model <- build()
epoch_times <- numeric(0)
te <- 0
cb <- callback_lambda(
  on_epoch_begin = function(epoch, logs) te <<- hires(),
  on_test_begin = function(logs) epoch_times <<- c(epoch_times, hires() - te)
)
hist <- fit(model, x_train, y_train, batch_size = BATCH, epochs = epochs, verbose = 0, callbacks = list(cb),
            validation_data = list(x_test, y_test), validation_batch_size = 1000L)
accs <- hist$metrics$val_accuracy
params <- count_params(model)

# ---- inference: predict() on the 10k test images, batch 1000. Headline: the test set already in
# an engine tensor (as torch's loop has it in a torch tensor); also from the R array (conversion of
# 7.8M doubles to float32 and the NA/Inf check included).
xt <- rk_tensor(x_test, dtype = "float32")
invisible(infer_pass(model, xt, nrow(x_test)))
infer <- vapply(1:5, function(i) infer_pass(model, xt, nrow(x_test)), numeric(1))
invisible(infer_pass(model, x_test, nrow(x_test)))
infer_r <- vapply(1:5, function(i) infer_pass(model, x_test, nrow(x_test)), numeric(1))

# ---- timing run: per-batch times from on_train_batch_end, fresh model
tmodel <- build()
batch_times <- numeric(0)
tb <- 0
tcb <- callback_lambda(
  on_train_batch_begin = function(batch, logs) if (batch == 1L) tb <<- hires(),
  on_train_batch_end = function(batch, logs) {
    t <- hires()
    batch_times <<- c(batch_times, t - tb)
    tb <<- t
  }
)
for (e in seq_len(timing_epochs))
  fit(tmodel, x_train, y_train, batch_size = BATCH, epochs = 1L, verbose = 0, callbacks = list(tcb))
nb_epoch <- ceiling(nrow(x_train) / BATCH)
# drop the (smaller) last batch of each epoch, as the chunks of full batches in torch mostly are
full <- batch_times[-(seq_len(timing_epochs) * nb_epoch)]
bt <- full[-seq_len(WARMUP)]
chunks <- chunk_times(bt, CHUNK)
sps <- stats3(CHUNK * BATCH / chunks)
print_result("mlp", params, nrow(x_train), nb_epoch, epoch_times, sps, infer, infer_r, accs, rss_after_data,
             data_load_s, peak_rss_mb = num(max(hwm_data, proc_status("VmHWM"))),
             peak_rss_train_mb = if (hwm_reset) num(proc_status("VmHWM")) else "null")
