.onLoad <- function(libname, pkgname) {
  # Lets the engine's allocator run R's garbage collector before it reports
  # out-of-memory: tensors held by unreachable R objects are freed only by the GC.
  rk_glue_init()
  invisible()
}
