# The Fashion-MNIST convnet workload of ../shared/bench/train_torch.py (--models cnn), in rkeras.
#
# Same data (dataset_fashion_mnist(), x / 255, as 28x28x1 images), model (Conv2D(32, 3x3, relu) -
# MaxPool(2) - Conv2D(64, 3x3, relu) - MaxPool(2) - Flatten - Dropout(0.5) - Dense(10) logits, as
# torch's nn.Sequential there; channels-last here, channels-first in torch), initialisers (Keras
# defaults: glorot_uniform kernels, zero biases), loss (softmax cross-entropy on logits), optimizer
# (Adam lr 1e-3, eps 1e-7), batch 128, epochs (1, torch's default for cnn), threads.
#
# Measured as the PyTorch script measures it:
#   train samples/s  median (and min/max) over chunks of 10 batches after 5 warm-up batches. Each
#                    batch is timed from one on_train_batch_end callback to the next. Unlike
#                    bench/mlp.R this happens in the main fit(): a convnet batch takes tens of
#                    milliseconds, so the callback's trip into R (microseconds) does not matter and
#                    one run instead of two halves the bench time.
#   epoch time       wall time of each epoch (on_epoch_begin to on_test_begin: evaluation excluded).
#   inference        samples/s of predict(model, x, batch_size = 1000) on the 10k test images,
#                    median/min/max of 5 passes (2 if a pass takes > 4 s, as torch) after one warm-up
#                    pass; infer_sps_*: x already an engine tensor (as torch's loop has a torch tensor),
#                    infer_r_array_sps_*: x the R array (conversion included).
#   test accuracy    after each epoch (fit()'s validation on the 10k test set).
#   memory           VmRSS after data load, peak RSS (VmHWM) at the end.
# Prints one line "RESULT {json}" with the train_torch.py field names.
#
# Usage: Rscript bench/cnn.R [--threads 2] [--epochs 1]
suppressPackageStartupMessages(library(rkeras))

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1L])), "common.R"))
threads <- as.integer(opt("threads", 2))
epochs <- as.integer(opt("epochs", 1))
BATCH <- 128L
CHUNK <- 10L
WARMUP <- 5L


config_set_num_threads(threads)
set.seed(0)

t0 <- hires()
fm <- dataset_fashion_mnist()
x_train <- array_reshape(fm$train$x / 255, c(nrow(fm$train$x), 28L, 28L, 1L))
x_test <- array_reshape(fm$test$x / 255, c(nrow(fm$test$x), 28L, 28L, 1L))
y_train <- fm$train$y
y_test <- fm$test$y
rm(fm)
invisible(gc())
data_load_s <- hires() - t0
rss_after_data <- proc_status("VmRSS")

model <- compile_bench(mnist_convnet(), metrics = "accuracy")
params <- count_params(model)

epoch_times <- numeric(0)
batch_times <- numeric(0)
te <- 0
tb <- 0
cb <- callback_lambda(
  on_epoch_begin = function(epoch, logs) te <<- tb <<- hires(),
  on_train_batch_end = function(batch, logs) {
    t <- hires()
    batch_times <<- c(batch_times, t - tb)
    tb <<- t
  },
  on_test_begin = function(logs) epoch_times <<- c(epoch_times, hires() - te)
)
hist <- fit(model, x_train, y_train, batch_size = BATCH, epochs = epochs, verbose = 0, callbacks = list(cb),
            validation_data = list(x_test, y_test), validation_batch_size = 1000L)
accs <- hist$metrics$val_accuracy

nb_epoch <- ceiling(nrow(x_train) / BATCH)
# drop the (smaller) last batch of each epoch and the warm-up batches
full <- batch_times[-(seq_len(epochs) * nb_epoch)]
bt <- full[-seq_len(WARMUP)]
chunks <- chunk_times(bt, CHUNK)
sps <- stats3(CHUNK * BATCH / chunks)

xt <- rk_tensor(x_test, dtype = "float32")
warm <- infer_pass(model, xt, nrow(x_test))
npass <- if (nrow(x_test) / warm < 4) 5L else 2L
infer <- vapply(seq_len(npass), function(i) infer_pass(model, xt, nrow(x_test)), numeric(1))
infer_r <- vapply(seq_len(npass), function(i) infer_pass(model, x_test, nrow(x_test)), numeric(1))
print_result("cnn", params, nrow(x_train), nb_epoch, epoch_times, sps, infer, infer_r, accs, rss_after_data,
             data_load_s, peak_rss_mb = num(proc_status("VmHWM")))
