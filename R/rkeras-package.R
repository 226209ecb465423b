#' rkeras: Keras for R with its own engine
#'
#' rkeras implements the keras3 R interface on top of a tensor, autograd and
#' layer engine written in C++17 and compiled into the package. It needs no
#' Python installation: installing the package is the whole installation.
#'
#' The numerics run on the CPU (Eigen, OpenMP, SIMD kernels chosen at run
#' time) and, in builds where the CUDA toolkit was found, on an NVIDIA GPU.
#' See `vignette("internals", package = "rkeras")` for the architecture.
#'
#' @keywords internal
"_PACKAGE"

## usethis namespace: start
#' @useDynLib rkeras, .registration = TRUE
#' @importFrom Rcpp sourceCpp
## usethis namespace: end
NULL
