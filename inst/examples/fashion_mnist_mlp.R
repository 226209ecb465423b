# The README's main example (run by `make demo`): a keras3 script, unchanged but for
# library(rkeras). Fashion-MNIST comes from Debian's dataset-fashion-mnist package (or the
# Keras cache / download), an MLP 784-256-128-10 trains for 5 epochs with Adam, and the test
# accuracy is printed.
library(rkeras)
set.seed(1)

c(c(x_train, y_train), c(x_test, y_test)) %<-% dataset_fashion_mnist()
x_train <- array_reshape(x_train, c(nrow(x_train), 784)) / 255
x_test <- array_reshape(x_test, c(nrow(x_test), 784)) / 255

model <- keras_model_sequential(input_shape = 784) |>
  layer_dense(units = 256, activation = "relu") |>
  layer_dense(units = 128, activation = "relu") |>
  layer_dense(units = 10, activation = "softmax")
summary(model)

model |> compile(
  optimizer = optimizer_adam(),
  loss = "sparse_categorical_crossentropy",
  metrics = "accuracy"
)

elapsed <- system.time(
  history <- model |> fit(x_train, y_train, batch_size = 128, epochs = 5)
)[["elapsed"]]

scores <- model |> evaluate(x_test, y_test, verbose = 0)
cat(sprintf("\ntrained 5 epochs in %.1f s (%s SIMD, %d threads)\n",
            elapsed, config_simd_level(), config_num_threads()))
cat(sprintf("test accuracy: %.4f\n", scores$accuracy))
