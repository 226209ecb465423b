.onLoad <- function(libname, pkgname) {
  # Lets the engine's allocator run R's garbage collector before it reports
  # out-of-memory: tensors held by unreachable R objects are freed only by the GC.
  rk_glue_init()
  # Tests only (see rk_fake_gpu() in gpu.R): never on unless RKERAS_FAKE_GPU=1.
  rk_fake_gpu_from_env()
  # With a usable GPU and no request for the CPU, models go to the GPU from the start (as Keras
  # does), so that config_backend() and where the engine puts new weights agree. Nothing is
  # touched on machines without one.
  if (rk_cuda_available()) try(rk_sync_default_device(), silent = TRUE)
  invisible()
}
