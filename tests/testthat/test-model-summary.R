# summary() / print() / format() in keras3's (Keras 3 rich) table layout.

test_that("summary of a built Sequential model matches keras3's table exactly", {
  local_reproducible_output(width = 80)
  model <- keras_model_sequential(input_shape = 784, name = "sequential")
  model |>
    layer_dense(256, activation = "relu", name = "dense") |>
    layer_dropout(0.2, name = "dropout") |>
    layer_dense(128, activation = "relu", name = "dense_1") |>
    layer_dense(10, activation = "softmax", name = "dense_2")
  expected <- c(
    'Model: "sequential"',
    "\u250f\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2533\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2533\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2513",
    "\u2503 Layer (type)                    \u2503 Output Shape           \u2503       Param # \u2503",
    "\u2521\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2547\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2547\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2529",
    "\u2502 dense (Dense)                   \u2502 (None, 256)            \u2502       200,960 \u2502",
    "\u251c\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u253c\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u253c\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2524",
    "\u2502 dropout (Dropout)               \u2502 (None, 256)            \u2502             0 \u2502",
    "\u251c\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u253c\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u253c\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2524",
    "\u2502 dense_1 (Dense)                 \u2502 (None, 128)            \u2502        32,896 \u2502",
    "\u251c\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u253c\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u253c\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2524",
    "\u2502 dense_2 (Dense)                 \u2502 (None, 10)             \u2502         1,290 \u2502",
    "\u2514\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2534\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2534\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2518",
    " Total params: 235,146 (918.54 KB)",
    " Trainable params: 235,146 (918.54 KB)",
    " Non-trainable params: 0 (0.00 B)"
  )
  txt <- format(model)
  expect_type(txt, "character")
  expect_length(txt, 1)
  expect_equal(strsplit(txt, "\n", fixed = TRUE)[[1]], expected)
  expect_output(print(model), "Total params: 235,146 (918.54 KB)", fixed = TRUE)
  out <- utils::capture.output(s <- summary(model))
  expect_equal(out, expected)
  expect_equal(s, txt)
  expect_invisible(utils::capture.output(print(model)) -> shown)
  # every table line is exactly 76 characters wide at width 80
  expect_true(all(nchar(expected[2:12]) == 76L))
})

test_that("line_length and the width option set the table width", {
  local_reproducible_output(width = 80)
  model <- keras_model_sequential(input_shape = 4) |> layer_dense(2)
  lines <- strsplit(format(model, line_length = 60), "\n")[[1]]
  expect_true(all(nchar(lines[2:6]) == 60L))
  local_reproducible_output(width = 200)
  lines <- strsplit(format(model), "\n")[[1]]
  expect_true(all(nchar(lines[2:6]) == 88L))
})

test_that("column widths follow rich's ratio_reduce with Python rounding", {
  expect_equal(rk_rich_widths(c(34L, 26L, 16L), 76L), c(33L, 24L, 15L))
  expect_equal(rk_rich_widths(c(22L, 20L, 14L, 20L), 76L), c(21L, 19L, 12L, 19L))
  expect_equal(rk_readable_size(940584), "918.54 KB")
  expect_equal(rk_readable_size(0), "0.00 B")
  expect_equal(rk_readable_size(3 * 1024^2), "3.00 MB")
})

test_that("unbuilt models show ? shapes and 0 (unbuilt)", {
  local_reproducible_output(width = 80)
  model <- keras_model_sequential(name = "unb") |> layer_dense(3, name = "d1")
  lines <- strsplit(format(model), "\n")[[1]]
  expect_equal(lines[1], 'Model: "unb"')
  expect_equal(lines[5], "\u2502 d1 (Dense)                      \u2502 ?                      \u2502   0 (unbuilt) \u2502")
  expect_equal(lines[7:9], c(" Total params: 0 (0.00 B)", " Trainable params: 0 (0.00 B)",
                             " Non-trainable params: 0 (0.00 B)"))
  expect_match(format(model), "unbuilt")
  expect_output(summary(model), "unbuilt")
})

test_that("functional models with branches get a Connected to column and InputLayer rows", {
  local_reproducible_output(width = 80)
  inp <- keras_input(shape = 4, name = "img")
  a <- inp |> layer_dense(3, name = "left")
  b <- inp |> layer_dense(3, name = "right")
  out <- layer_add(list(a, b), name = "sum")
  model <- keras_model(inp, out, name = "branchy")
  lines <- strsplit(format(model), "\n")[[1]]
  expect_equal(lines[1], 'Model: "branchy"')
  expect_equal(lines[3], "\u2503 Layer (type)        \u2503 Output Shape      \u2503    Param # \u2503 Connected to      \u2503")
  expect_equal(lines[5:6], c("\u2502 img (InputLayer)    \u2502 (None, 4)         \u2502          0 \u2502 -                 \u2502",
                             "\u251c\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u253c\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u253c\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u253c\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2500\u2524"))
  expect_equal(lines[7], "\u2502 left (Dense)        \u2502 (None, 3)         \u2502         15 \u2502 img[0][0]         \u2502")
  expect_equal(lines[11:12], c("\u2502 sum (Add)           \u2502 (None, 3)         \u2502          0 \u2502 left[0][0],       \u2502",
                               "\u2502                     \u2502                   \u2502            \u2502 right[0][0]       \u2502"))
  expect_equal(lines[14], " Total params: 30 (120.00 B)")
})

test_that("a linear functional model is printed like a Sequential one (no Connected to)", {
  local_reproducible_output(width = 80)
  inp <- keras_input(shape = 784, name = "pixels")
  out <- inp |> layer_dense(10, name = "logits")
  model <- keras_model(inp, out, name = "lin")
  lines <- strsplit(format(model), "\n")[[1]]
  expect_equal(lines[3], "\u2503 Layer (type)                    \u2503 Output Shape           \u2503       Param # \u2503")
  expect_equal(lines[5], "\u2502 pixels (InputLayer)             \u2502 (None, 784)            \u2502             0 \u2502")
  expect_equal(lines[7], "\u2502 logits (Dense)                  \u2502 (None, 10)             \u2502         7,850 \u2502")
})

test_that("show_trainable adds a Trainable column when weights are frozen", {
  local_reproducible_output(width = 80)
  model <- keras_model_sequential(input_shape = 4, name = "fr") |>
    layer_dense(3, name = "a") |> layer_dropout(0.1, name = "dr") |> layer_dense(2, name = "b")
  freeze_weights(model, to = 1)
  txt <- format(model)
  lines <- strsplit(txt, "\n")[[1]]
  # at width 80 the column is narrow: rich cuts the header as Keras shows it
  expect_equal(lines[3], "\u2503 Layer (type)                \u2503 Output Shape          \u2503    Param # \u2503 Trai\u2026 \u2503")
  expect_match(lines[5], "^\u2502 a \\(Dense\\) .*\u2502 +N +\u2502$")
  expect_match(lines[7], "^\u2502 dr \\(Dropout\\) .*\u2502 +- +\u2502$")
  expect_match(lines[9], "^\u2502 b \\(Dense\\) .*\u2502 +Y +\u2502$")
  expect_true(all(nchar(lines[2:10]) == 76L))
  expect_match(txt, " Trainable params: 8 (32.00 B)", fixed = TRUE)
  expect_match(txt, " Non-trainable params: 15 (60.00 B)", fixed = TRUE)
  expect_false(grepl("Trai\u2026", format(model, show_trainable = FALSE), fixed = TRUE))
  expect_match(format(model, show_trainable = TRUE, line_length = 140), "Trainable +\u2503")
})

test_that("nested models are one row with their class and parameter count", {
  local_reproducible_output(width = 80)
  inner <- keras_model_sequential(input_shape = 3, name = "inner") |> layer_dense(2)
  outer <- keras_model_sequential(input_shape = 3, name = "outer")
  outer %>% inner %>% layer_dense(1, name = "head")
  lines <- strsplit(format(outer), "\n")[[1]]
  expect_equal(lines[5], "\u2502 inner (Sequential)              \u2502 (None, 2)              \u2502             8 \u2502")
})

test_that("cell wrapping follows rich (word wrap, ellipsis for long words)", {
  expect_equal(rk_wrap_cell("input_layer (InputLayer)", 19), c("input_layer", "(InputLayer)"))
  expect_equal(rk_wrap_cell("a_very_long_layer_name[0][0]", 10), "a_very_lo\u2026")
  expect_equal(rk_wrap_cell("x[0][0], y[0][0], z[0][0]", 17), c("x[0][0], y[0][0],", "z[0][0]"))
})
