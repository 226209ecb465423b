test_that("rkeras_abort signals a classed error with the caller's call", {
  f <- function(x) rkeras_abort("bad `x`", class = "rkeras_value_error")
  err <- tryCatch(f(1), error = function(e) e)
  expect_s3_class(err, "rkeras_value_error")
  expect_s3_class(err, "rkeras_error")
  expect_s3_class(err, "error")
  expect_identical(conditionMessage(err), "bad `x`")
  expect_identical(conditionCall(err)[[1]], as.name("f"))
  expect_error(f(1), class = "rkeras_value_error")
})

test_that("multi-line messages are joined", {
  err <- tryCatch(rkeras_abort(c("a", "b"), class = "rkeras_dataset_error"),
                  error = function(e) e)
  expect_identical(conditionMessage(err), "a\nb")
  expect_s3_class(err, "rkeras_dataset_error")
})

test_that("rkeras_warn and rkeras_inform are classed", {
  expect_warning(rkeras_warn("careful"), class = "rkeras_warning")
  expect_message(rkeras_inform("hello"), class = "rkeras_message")
  expect_message(rkeras_inform("hello"), "^hello")
})
