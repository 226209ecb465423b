# The GPU workloads of bench/gpu_bench.cpp through the R API: the user's path (config_set_backend("cuda"),
# keras_model_sequential() / keras_model(), compile(), fit()). `make bench` runs it when gpu_available();
# otherwise it prints one "no GPU" line and exits 0.
#
# Models as bench/workloads.h states them (the MLP 784-256-128-10, the Keras mnist_convnet with its
# Dropout(0.5), the ResNet-style CNN on 32x32x3 with batch normalisation), Keras default
# initialisers, sparse categorical cross-entropy from logits, Adam lr 1e-3 eps 1e-7, float32 (TF32
# off, the default). Data: synthetic (U[0,1) inputs, labels in 0..9), turned into engine tensors on
# the GPU once (rk_tensor() after config_set_backend("cuda")), so fit() uploads nothing.
# Measured as bench/cnn.R does: one fit() of warmup + chunks x 10 batches (shuffled), each batch
# timed from one on_train_batch_end to the next; train samples/s = median (min, max) over chunks of
# 10 batches after 5 warm-up batches. The engine reads the loss (a device synchronisation) every
# step, so a chunk's clock includes all of its work but the last optimizer update.
# Prints a table and one "RESULT {json}" line per workload.
#
# Usage: Rscript bench/gpu.R [--chunks 10] [--mlp 1] [--convnet 1] [--resnet 1] [--batch N] [--cpu 1]
# (--batch N: every workload at batch N instead of its own; --cpu 1: run on the CPU, to check this
# script where there is no GPU, e.g. --cpu 1 --chunks 1 --batch 32.)
suppressPackageStartupMessages(library(rkeras))

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1L])), "common.R"))
on_cpu <- opt("cpu", 0) == 1
if (!on_cpu && !gpu_available()) {
  cat("gpu.R: no GPU: GPU workloads skipped (", attr(gpu_info(), "reason"), ")\n", sep = "")
  quit(status = 0)
}
chunks <- as.integer(opt("chunks", 10))
one_batch <- as.integer(opt("batch", 0))
CHUNK <- 10L
WARMUP <- 5L
if (on_cpu) {
  info <- data.frame(name = "cpu")
  cat(sprintf("gpu.R: rkeras %s on the CPU (%d threads): a check of the script, not the GPU benchmark\n",
              packageVersion("rkeras"), config_num_threads()))
} else {
  config_set_backend("cuda")
  info <- gpu_info()
  cat(sprintf("gpu.R: rkeras %s on %s (CUDA runtime %s, cuDNN %s), TF32 off\n", packageVersion("rkeras"),
              info$name[1L], info$cuda_runtime[1L], info$cudnn[1L]))
}
set.seed(0)

build_resnet <- function() {
  conv_bn <- function(x, filters, kernel, strides = 1) {
    x |>
      layer_conv_2d(filters, c(kernel, kernel), strides = strides, padding = "same", use_bias = FALSE) |>
      layer_batch_normalization(momentum = 0.99, epsilon = 1e-3)
  }
  inputs <- keras_input(shape = c(32, 32, 3))
  x <- conv_bn(inputs, 16, 3) |> layer_activation("relu")
  in_filters <- 16
  for (filters in c(16, 32, 64)) {
    for (block in 1:2) {
      strides <- if (block == 1 && filters != 16) 2 else 1
      y <- conv_bn(x, filters, 3, strides) |> layer_activation("relu")
      y <- conv_bn(y, filters, 3)
      shortcut <- if (strides != 1 || filters != in_filters) conv_bn(x, filters, 1, strides) else x
      x <- layer_add(list(y, shortcut)) |> layer_activation("relu")
      in_filters <- filters
    }
  }
  outputs <- x |> layer_global_average_pooling_2d() |> layer_dense(10)
  keras_model(inputs, outputs)
}

workloads <- list(
  list(model = "mlp", build = mnist_mlp, shape = 784L, batches = c(128L, 256L, 1024L)),
  list(model = "convnet", build = mnist_convnet, shape = c(28L, 28L, 1L), batches = c(128L, 256L, 1024L)),
  list(model = "resnet", build = build_resnet, shape = c(32L, 32L, 3L), batches = 256L)
)

run <- function(w, batch) {
  n_batches <- WARMUP + chunks * CHUNK
  n <- batch * n_batches
  x <- rk_tensor(array(runif(n * prod(w$shape)), c(n, w$shape)), dtype = "float32")
  y <- rk_tensor(array(sample(0:9, n, replace = TRUE), n), dtype = "int32")
  model <- compile_bench(w$build())
  batch_times <- numeric(0)
  tb <- 0
  cb <- callback_lambda(
    on_epoch_begin = function(epoch, logs) tb <<- hires(),
    on_train_batch_end = function(batch, logs) {
      t <- hires()
      batch_times <<- c(batch_times, t - tb)
      tb <<- t
    }
  )
  hist <- fit(model, x, y, batch_size = batch, epochs = 1, verbose = 0, callbacks = list(cb))
  bt <- batch_times[-seq_len(WARMUP)]
  ch <- chunk_times(bt, CHUNK)
  s <- stats3(CHUNK * batch / ch)
  list(model = w$model, batch = batch, params = count_params(model), chunks = length(ch),
       med = s[["med"]], min = s[["min"]], max = s[["max"]], loss = hist$metrics$loss[1L])
}

cat(sprintf("%-8s %6s %9s %12s %12s %12s %8s\n", "model", "batch", "params", "median", "min", "max", "loss"))
results <- list()
for (w in workloads) {
  if (opt(w$model, 1) == 0) next
  for (b in if (one_batch > 0) one_batch else w$batches) {
    r <- run(w, b)
    cat(sprintf("%-8s %6d %9.0f %12.0f %12.0f %12.0f %8.4f\n", r$model, r$batch, r$params, r$med, r$min, r$max, r$loss))
    results[[length(results) + 1L]] <- r
  }
}
for (r in results) {
  cat(sprintf(paste0("RESULT {\"framework\": \"rkeras-%s-R\", \"device\": \"%s\", \"device_name\": \"%s\", ",
                     "\"model\": \"%s\", \"batch\": %d, \"params\": %.0f, \"chunks\": %d, \"train_sps_median\": %s, ",
                     "\"train_sps_min\": %s, \"train_sps_max\": %s, \"loss_mean\": %s}\n"),
              packageVersion("rkeras"), if (on_cpu) "cpu" else "cuda", info$name[1L], r$model, r$batch, r$params, r$chunks, num(r$med), num(r$min),
              num(r$max), num(r$loss)))
}
if (!on_cpu) config_set_backend("cpu")
