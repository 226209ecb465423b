test_that("%>% is magrittr's pipe", {
  expect_identical(`%>%`, magrittr::`%>%`)
  expect_identical(c(1, 4, 9) %>% sqrt(), c(1, 2, 3))
})

test_that("%<-% is zeallot's destructuring assignment", {
  expect_identical(`%<-%`, zeallot::`%<-%`)
  data <- list(train = list(x = 1:3, y = 4:6), test = list(x = 7L, y = 8L))
  c(c(x_train, y_train), c(x_test, y_test)) %<-% data
  expect_identical(x_train, 1:3)
  expect_identical(y_train, 4:6)
  expect_identical(x_test, 7L)
  expect_identical(y_test, 8L)
})

test_that("the operators are exported by rkeras", {
  skip_if_not("rkeras" %in% loadedNamespaces())
  exports <- getNamespaceExports("rkeras")
  expect_true(all(c("%>%", "%<-%") %in% exports))
})
