# The fake GPU (rkeras:::rk_fake_gpu(): cuda:0 in host memory, computed by the CPU kernels; tests
# only). `make test-fake-gpu` runs the whole suite with it on (RKERAS_FAKE_GPU=1) and cuda:0 as the
# default device; tests that assert the CPU device or the absence of a GPU skip then.

skip_if_fake_gpu <- function(why = "asserts the CPU device or the absence of a GPU") {
  skip_if(rkeras:::rk_fake_gpu_on(), paste("the fake GPU is on (RKERAS_FAKE_GPU=1):", why))
}

# Switches the fake GPU on and makes cuda:0 the default device until the calling test (frame
# `env`) ends; then the backend request, the default device and the fake's state are put back.
local_fake_gpu <- function(env = parent.frame()) {
  was <- rkeras:::rk_fake_gpu(TRUE)
  old_set <- rkeras:::rk_config$backend_set
  old_dev <- rkeras:::rk_default_device()
  config_set_backend("cuda")
  restore <- function() {
    rk_config$backend_set <- old_set
    rkeras:::rk_set_default_device(if (startsWith(old_dev, "cuda")) "cuda" else "cpu")
    rkeras:::rk_fake_gpu(was)
  }
  # The call holds the function itself, so nothing is added to the test's variables.
  do.call(on.exit, list(as.call(list(restore)), add = TRUE), envir = env)
  invisible(was)
}
