# Helpers shared by the R benchmark scripts (bench/mlp.R, bench/cnn.R, bench/gpu.R): command-line
# options, /proc memory figures, the benchmark models and their optimizer, the median/min/max summary
# train_torch.py prints over chunks of batches, and one inference pass. Sourced by those scripts from
# their own folder.

bench_args <- commandArgs(trailingOnly = TRUE)

# Value of `--name v` on the command line as a number, or `default`.
opt <- function(name, default) {
  i <- match(paste0("--", name), bench_args)
  if (is.na(i)) default else as.numeric(bench_args[[i + 1L]])
}

# A /proc/self/status figure (e.g. "VmHWM") in MB, NA where there is none.
proc_status <- function(key) {
  l <- grep(paste0("^", key, ":"), readLines("/proc/self/status"), value = TRUE)
  if (!length(l)) return(NA_real_)
  as.numeric(strsplit(trimws(sub(paste0("^", key, ":"), "", l)), "[[:space:]]+")[[1]][1]) / 1024
}

# Median (torch's s[len // 2]), min and max.
stats3 <- function(x) {
  s <- sort(x)
  c(med = s[length(s) %/% 2L + 1L], min = s[1L], max = s[length(s)])
}

hires <- function() as.numeric(Sys.time())

# Summed times of each whole chunk of `chunk` consecutive batch times (a partial last chunk dropped).
chunk_times <- function(batch_times, chunk) {
  n <- length(batch_times) %/% chunk
  vapply(seq_len(n), function(i) sum(batch_times[((i - 1L) * chunk + 1L):(i * chunk)]), numeric(1))
}

# The MLP 784-256-128-10 (logits) of train_torch.py --models mlp and bench/workloads.h.
mnist_mlp <- function() {
  keras_model_sequential(input_shape = 784) |>
    layer_dense(256, activation = "relu") |>
    layer_dense(128, activation = "relu") |>
    layer_dense(10)
}

# The Keras mnist_convnet (logits) of train_torch.py --models cnn and bench/workloads.h: Conv2D(32,
# 3x3, relu) - MaxPool(2) - Conv2D(64, 3x3, relu) - MaxPool(2) - Flatten - Dropout(0.5) - Dense(10).
mnist_convnet <- function() {
  keras_model_sequential(input_shape = c(28, 28, 1)) |>
    layer_conv_2d(32, c(3, 3), activation = "relu") |>
    layer_max_pooling_2d(c(2, 2)) |>
    layer_conv_2d(64, c(3, 3), activation = "relu") |>
    layer_max_pooling_2d(c(2, 2)) |>
    layer_flatten() |>
    layer_dropout(0.5) |>
    layer_dense(10)
}

# Compiles `model` as every benchmark trains: Adam lr 1e-3 eps 1e-7 (torch's defaults), softmax
# cross-entropy on logits; `...` goes to compile() (e.g. metrics). Returns the model.
compile_bench <- function(model, ...) {
  model |> compile(optimizer = optimizer_adam(learning_rate = 1e-3, epsilon = 1e-7),
                   loss = loss_sparse_categorical_crossentropy(from_logits = TRUE), ...)
  model
}

# Samples per second of one predict() over `data` (n samples) at batch 1000.
infer_pass <- function(model, data, n) {
  t <- hires()
  predict(model, data, batch_size = 1000L, verbose = 0)
  n / (hires() - t)
}

# A number for the RESULT json line (null for NA).
num <- function(x) if (is.na(x)) "null" else format(x, digits = 7)

# Prints the RESULT line both benchmark scripts end with (JSON; bench/compare.sh reads it by key):
# the fields they share, then the script's own (`...`, already formatted with num()).
print_result <- function(model, params, n_train, nb_epoch, epoch_times, sps, infer, infer_r, accs,
                         rss_after_data, data_load_s, ...) {
  ep <- stats3(epoch_times)
  inf <- stats3(infer)
  infr <- stats3(infer_r)
  fields <- c(list(
    framework = sprintf("\"rkeras-%s\"", packageVersion("rkeras")), model = sprintf("\"%s\"", model),
    threads = config_num_threads(), simd = sprintf("\"%s\"", config_simd_level()), params = params,
    batch_size = BATCH, epochs_run = length(epoch_times), batches_run = length(epoch_times) * nb_epoch,
    extrapolated = "false",
    epoch_s_median = num(ep[["med"]]), epoch_s_min = num(ep[["min"]]), epoch_s_max = num(ep[["max"]]),
    epoch_times_s = sprintf("[%s]", paste(vapply(epoch_times, num, ""), collapse = ", ")),
    epoch_sps_median = num(n_train / ep[["med"]]),
    train_sps_median = num(sps[["med"]]), train_sps_min = num(sps[["min"]]), train_sps_max = num(sps[["max"]]),
    infer_sps_median = num(inf[["med"]]), infer_sps_min = num(inf[["min"]]), infer_sps_max = num(inf[["max"]]),
    infer_r_array_sps_median = num(infr[["med"]]), infer_r_array_sps_min = num(infr[["min"]]),
    infer_r_array_sps_max = num(infr[["max"]]),
    test_acc_per_epoch = sprintf("[%s]", paste(vapply(accs, num, ""), collapse = ", ")),
    test_acc_epoch1 = num(accs[1L]), test_acc_last = num(accs[length(accs)]),
    rss_after_data_mb = num(rss_after_data), data_load_s = num(data_load_s)), list(...))
  cat("RESULT {", paste(sprintf("\"%s\": %s", names(fields), unlist(fields)), collapse = ", "), "}\n", sep = "")
}
