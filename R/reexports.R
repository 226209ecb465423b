# Operators that keras3 re-exports, so that keras3 scripts using them run
# after library(rkeras) alone.

#' @importFrom magrittr %>%
#' @export
magrittr::`%>%`

#' @importFrom zeallot %<-%
#' @export
zeallot::`%<-%`
