# GEMM through the installed R package (R's default -O2 build, no -march): float32 matmul
# GFLOP/s on 1024^3 and the dense-layer forward shape, next to bench_gemm_bench's engine figures.
# Run: Rscript bench/gemm.R   (make bench runs it after the engine benchmarks)
suppressPackageStartupMessages(library(rkeras))
mm <- rkeras:::rk_matmul
gflops <- function(m, k, n, reps = 20L) {
  a <- rk_tensor(array(runif(m * k), c(m, k)), dtype = "float32")
  b <- rk_tensor(array(runif(k * n), c(k, n)), dtype = "float32")
  for (i in 1:3) mm(a, b)  # warm-up: packing buffers and allocator cache
  best <- Inf
  for (r in 1:5) {
    t <- system.time(for (i in seq_len(reps)) mm(a, b))[["elapsed"]] / reps
    best <- min(best, t)
  }
  2 * m * k * n / best / 1e9
}
cat(sprintf("rkeras %s, SIMD level %s, %d threads\n", packageVersion("rkeras"),
            config_simd_level(), config_num_threads()))
shapes <- list(c(1024, 1024, 1024), c(128, 784, 256), c(784, 128, 256), c(128, 256, 784))
cat(sprintf("%-22s %10s\n", "M x K x N", "GFLOP/s"))
for (s in shapes) {
  reps <- if (prod(s) > 1e8) 10L else 200L
  cat(sprintf("%-22s %10.1f\n", paste(s, collapse = " x "), gflops(s[1], s[2], s[3], reps)))
}
