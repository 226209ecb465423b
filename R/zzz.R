.onLoad <- function(libname, pkgname) {
  # Lets the engine's allocator run R's garbage collector before it reports
  # out-of-memory: tensors held by unreachable R objects are freed only by the GC.
  rk_glue_init()
  # Tests only (see rk_fake_gpu() in gpu.R): never on unless RKERAS_FAKE_GPU=1.
  rk_fake_gpu_from_env()
  invisible()
}
