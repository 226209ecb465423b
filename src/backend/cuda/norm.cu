// Batch normalization through cuDNN (CUDNN_BATCHNORM_SPATIAL): x [outer, C, inner] is the NCHW
// tensor (N = outer, C, H = inner, W = 1), the per-channel operands the derived 1xCx1x1 descriptor.
// cuDNN's running-statistics update uses the unbiased variance while Keras averages the biased
// one, so no running buffers are passed (allowed: both NULL); the layer updates its moving
// statistics from the returned biased variance, recovered here as 1 / invstd^2 - eps.
#include <limits>
#include <string>

#include "backend/cuda/cuda_backend.cuh"
#include "backend/cuda/cudnn_desc.cuh"
#include "backend/cuda/kernels.cuh"

namespace rk::cuda {

namespace {

constexpr cudnnBatchNormMode_t kMode = CUDNN_BATCHNORM_SPATIAL;

// cuDNN refuses (or, in old versions, clamps) an epsilon below its minimum: say so instead.
void check_epsilon(double eps, const char* op) {
  if (eps < CUDNN_BN_MIN_EPSILON)
    throw UnsupportedError(std::string(op) + ": epsilon " + std::to_string(eps) +
                           " is below cuDNN's minimum CUDNN_BN_MIN_EPSILON = " + std::to_string(CUDNN_BN_MIN_EPSILON) +
                           " (use a larger epsilon or the CPU backend)");
}

// What every cuDNN batch-norm call of `op` on x [outer, C, inner] needs: epsilon checked against
// cuDNN's minimum, the data descriptor of x and the per-channel one cuDNN derives from it.
struct BnDescs {
  TensorDesc x, c;

  BnDescs(const Tensor& xt, double eps, const char* op) {
    check_epsilon(eps, op);
    // cuDNN's 4-d descriptors take int extents and strides.
    if (xt.numel() > kCudnnMaxElems)
      throw UnsupportedError(std::string(op) + ": input " + xt.shape().str() +
                             " has more than 2^31 - 1 elements (cuDNN's limit)");
    const cudnnDataType_t t = cudnn_float_type(xt.dtype(), op);
    RK_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x.d, CUDNN_TENSOR_NCHW, t, static_cast<int>(xt.size(0)),
                                              static_cast<int>(xt.size(1)), static_cast<int>(xt.size(2)), 1));
    RK_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(c.d, x.d, kMode));
  }
};

// var[c] = max(0, 1 / invstd[c]^2 - eps): the biased batch variance (in double, then rounded).
template <typename T>
__global__ void variance_from_invstd_kernel(const T* invstd, T* var, double eps, int64_t c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < c; i += int64_t(blockDim.x) * gridDim.x) {
    const double s = static_cast<double>(invstd[i]);
    const double v = 1.0 / (s * s) - eps;
    var[i] = static_cast<T>(v > 0 ? v : 0.0);
  }
}

}  // namespace

void CudaBackend::batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                                              Tensor& y, Tensor& mean, Tensor& var, Tensor& invstd) {
  const char* op = "batch_norm";
  if (x.size(1) == 0) return;
  if (x.numel() == 0) {  // no values per channel: statistics undefined, as 0 / 0 on the CPU
    const double nan = std::numeric_limits<double>::quiet_NaN();
    fill(mean, nan);
    fill(var, nan);
    fill(invstd, nan);
    return;
  }
  const BnDescs d(x, eps, op);
  DeviceContext& c = ctx();
  const DType t = x.dtype();
  const CudnnScale b;
  RK_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(c.cudnn(), kMode, b.one(t), b.zero(t), d.x.d, x.raw_data(),
                                                        d.x.d, y.raw_data(), d.c.d, gamma.raw_data(), beta.raw_data(),
                                                        /*exponentialAverageFactor=*/0.0, nullptr, nullptr, eps,
                                                        mean.raw_data(), invstd.raw_data()));
  const int64_t ch = x.size(1);
  RK_DISPATCH_FLOAT(t, op, [&] {
    using T = scalar_t;
    variance_from_invstd_kernel<T><<<grid_for(ch), kThreads, 0, c.stream()>>>(dptr<T>(invstd), dptr<T>(var), eps, ch);
    RK_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                               const Tensor& mean, const Tensor& var, double eps, Tensor& y) {
  const char* op = "batch_norm";
  if (x.numel() == 0) return;
  const BnDescs d(x, eps, op);
  DeviceContext& c = ctx();
  const DType t = x.dtype();
  const CudnnScale b;
  RK_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(c.cudnn(), kMode, b.one(t), b.zero(t), d.x.d, x.raw_data(),
                                                         d.x.d, y.raw_data(), d.c.d, gamma.raw_data(), beta.raw_data(),
                                                         mean.raw_data(), var.raw_data(), eps));
}

void CudaBackend::batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& gamma, const Tensor& mean,
                                      const Tensor& invstd, double eps, Tensor& gx, Tensor& ggamma, Tensor& gbeta) {
  const char* op = "batch_norm gradient";
  if (!gx.defined() && !ggamma.defined() && !gbeta.defined()) return;
  if (x.numel() == 0) {  // empty sums
    if (ggamma.defined()) fill(ggamma, 0.0);
    if (gbeta.defined()) fill(gbeta, 0.0);
    return;
  }
  const BnDescs d(x, eps, op);
  DeviceContext& c = ctx();
  const DType t = x.dtype();
  // cuDNN writes all three gradients: unwanted ones go to scratch from the caching allocator.
  Tensor dx = gx.defined() ? gx : Tensor::empty(x.shape(), t, device());
  Tensor dg = ggamma.defined() ? ggamma : Tensor::empty(mean.shape(), t, device());
  Tensor db = gbeta.defined() ? gbeta : Tensor::empty(mean.shape(), t, device());
  const CudnnScale b;
  RK_CUDNN_CHECK(cudnnBatchNormalizationBackward(c.cudnn(), kMode, b.one(t), b.zero(t), b.one(t), b.zero(t), d.x.d,
                                                 x.raw_data(), d.x.d, gy.raw_data(), d.x.d, dx.raw_data(), d.c.d,
                                                 gamma.raw_data(), dg.raw_data(), db.raw_data(), eps, mean.raw_data(),
                                                 invstd.raw_data()));
}

}  // namespace rk::cuda
