# rkeras engine demonstration: fit a linear regression y = X w + b by gradient descent,
# with the forward pass, the loss and the gradients computed by the package's C++
# tensor and autograd engine, driven from R. Run with `make demo` or
#   Rscript inst/examples/autograd_regression.R

library(rkeras)

cat(sprintf("rkeras %s engine demo: CPU kernels use SIMD level '%s' with %d thread(s)\n\n",
            utils::packageVersion("rkeras"), config_simd_level(), config_num_threads()))

# ---- a small regression data set, generated in R ------------------------------------
set_random_seed(2024)
n <- 500
true_w <- c(2.0, -3.5, 0.75)
true_b <- 1.25
X <- matrix(rnorm(n * 3), n, 3)
y <- X %*% true_w + true_b + rnorm(n, sd = 0.1)

# the data become engine tensors once; the parameters are leaves that need gradients
Xt <- rk_tensor(X, dtype = "float32")
yt <- rk_tensor(y, dtype = "float32")
w <- rk_tensor(matrix(0, 3, 1), dtype = "float32", requires_grad = TRUE)
b <- rk_tensor(0, dtype = "float32", requires_grad = TRUE)

matmul <- rkeras:::rk_matmul  # internal op wrapper (the public op_*() family comes later)

# ---- gradient descent ---------------------------------------------------------------
learning_rate <- 0.1
steps <- 100
cat(" step   mse loss\n")
for (step in seq_len(steps)) {
  pred <- matmul(Xt, w) + b            # forward: (n, 3) x (3, 1) + scalar
  loss <- mean((pred - yt)^2)          # mean squared error, a scalar tensor
  rk_backward(loss)                    # d loss / d w and d loss / d b
  # the update is not part of the model: no gradient recorded; new leaves replace w, b
  with_no_grad({
    w <- rk_tensor(w - learning_rate * rk_grad(w), requires_grad = TRUE)
    b <- rk_tensor(b - learning_rate * rk_grad(b), requires_grad = TRUE)
  })
  if (step == 1 || step %% 10 == 0) cat(sprintf("%5d   %.6f\n", step, as.array(loss)))
}

# ---- result -------------------------------------------------------------------------
fit <- data.frame(
  parameter = c(sprintf("w[%d]", 1:3), "b"),
  true = c(true_w, true_b),
  estimated = round(c(as.array(w), as.array(b)), 4)
)
cat("\nRecovered parameters:\n")
print(fit, row.names = FALSE)

ols <- stats::lm.fit(cbind(X, 1), y)$coefficients
cat(sprintf("\nLargest difference to the least-squares solution (lm.fit): %.2e\n",
            max(abs(c(as.array(w), as.array(b)) - ols))))
stopifnot(max(abs(c(as.array(w), as.array(b)) - c(true_w, true_b))) < 0.05)
cat("Demo finished: the engine's autograd recovered the true parameters.\n")
