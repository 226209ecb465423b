# The fake GPU (rk_fake_gpu(): cuda:0 in host memory, computed by the CPU kernels; tests
# only). `make test-fake-gpu` runs the whole suite with it on (RKERAS_FAKE_GPU=1) and cuda:0 as the
# default device; tests that check GPU placement switch it on for themselves with local_fake_gpu().

# Switches the fake GPU on and makes cuda:0 the default device until the calling test (frame
# `env`) ends; then the backend request, the default device and the fake's state are put back.
local_fake_gpu <- function(env = parent.frame()) {
  was <- rk_fake_gpu(TRUE)
  old_set <- rk_config$backend_set
  old_dev <- rk_default_device()
  config_set_backend("cuda")
  restore <- function() {
    rk_config$backend_set <- old_set
    rk_set_default_device(if (startsWith(old_dev, "cuda")) "cuda" else "cpu")
    rk_fake_gpu(was)
  }
  # The call holds the function itself, so nothing is added to the test's variables.
  do.call(on.exit, list(as.call(list(restore)), add = TRUE), envir = env)
  invisible(was)
}
