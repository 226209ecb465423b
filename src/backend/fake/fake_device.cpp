#include "backend/fake/fake_device.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"

namespace rk::fake {

namespace {
const Device kFakeDevice{DeviceType::CUDA, 0};

Backend& cpu() { return backend_for(cpu_device()); }

// Views of the arguments of one backend call as CPU tensors; every one must be on cuda:0.
Tensor on_host(const Tensor& t, const char* method) { return host_alias(t, kFakeDevice, method); }

// The fake GPU's free bytes given the allocator's figures (never negative).
int64_t free_of(int64_t capacity, const AllocatorStats& s) {
  const int64_t f = capacity - s.current - s.cached;
  return f > 0 ? f : 0;
}
}  // namespace

// --- allocator ----------------------------------------------------------------------------------

FakeCudaAllocator::~FakeCudaAllocator() { empty_cache(); }

// The capacity check comes before the host malloc, so a request larger than the fake GPU never
// touches host memory (in double: a huge request must not overflow the sum).
void* FakeCudaAllocator::allocate_block(size_t bytes, const AllocatorStats& s) {
  if (static_cast<double>(s.current) + static_cast<double>(s.cached) + static_cast<double>(bytes) >
      static_cast<double>(capacity_.load()))
    return nullptr;
  return std::aligned_alloc(kAlignment, bytes);
}

void FakeCudaAllocator::free_block(void* p) { std::free(p); }

bool FakeCudaAllocator::device_memory(const AllocatorStats& s, int64_t& free_bytes, int64_t& total_bytes) const {
  total_bytes = capacity_;
  free_bytes = free_of(total_bytes, s);
  return true;
}

void FakeCudaAllocator::set_capacity(int64_t bytes) {
  if (bytes <= 0) throw ValueError("the fake GPU's capacity must be positive, got " + std::to_string(bytes));
  capacity_ = bytes;
}

int64_t FakeCudaAllocator::free_bytes() const { return free_of(capacity_, stats()); }

FakeCudaAllocator& fake_allocator() {
  static FakeCudaAllocator* a = new FakeCudaAllocator();
  return *a;
}

// --- aliases ------------------------------------------------------------------------------------

Tensor host_alias(const Tensor& t, Device expected, const char* method) {
  if (!t.defined()) return Tensor();
  if (t.device() != expected)
    throw Error(std::string("internal error: the backend of ") + expected.str() + " got a tensor on " +
                t.device().str() + " in " + method + " (" + t.str() +
                "); every operand must be on the op's device (ops::to_device)");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = t.shape();
  impl->dtype = t.dtype();
  // The alias keeps the original's storage (and so its memory) alive for as long as it lives.
  const std::shared_ptr<Storage>& owner = t.impl()->storage;
  impl->storage = Storage::borrow(t.raw_data(), t.nbytes(), cpu_device(), owner);
  return Tensor(std::move(impl));
}

// --- backend ------------------------------------------------------------------------------------

namespace {
std::mutex g_transfer_mu;
TransferStats g_transfers;
}  // namespace

TransferStats transfer_stats() {
  std::lock_guard<std::mutex> lock(g_transfer_mu);
  return g_transfers;
}

void reset_transfer_stats() {
  std::lock_guard<std::mutex> lock(g_transfer_mu);
  g_transfers = TransferStats{};
}

void FakeCudaBackend::copy(const Tensor& src, Tensor& dst) {
  // The only method that crosses devices: host <-> fake GPU is a plain host copy.
  if (src.device().type == DeviceType::CPU && dst.device().type == DeviceType::CPU)
    throw UnsupportedError("the CUDA backend copies only to or from a CUDA device");
  auto side = [](const Tensor& t) { return t.device().type == DeviceType::CPU ? cpu_device() : kFakeDevice; };
  Tensor d = host_alias(dst, side(dst), "copy");
  cpu().copy(host_alias(src, side(src), "copy"), d);
  const bool up = src.device().type == DeviceType::CPU, down = dst.device().type == DeviceType::CPU;
  if (up || down) {
    std::lock_guard<std::mutex> lock(g_transfer_mu);
    (up ? g_transfers.h2d_bytes : g_transfers.d2h_bytes) += static_cast<int64_t>(src.nbytes());
    (up ? g_transfers.h2d_count : g_transfers.d2h_count) += 1;
  }
}

void FakeCudaBackend::fill(Tensor& dst, double value) {
  Tensor d = on_host(dst, "fill");
  cpu().fill(d, value);
}

void FakeCudaBackend::broadcast_to(const Tensor& src, Tensor& dst) {
  Tensor d = on_host(dst, "broadcast_to");
  cpu().broadcast_to(on_host(src, "broadcast_to"), d);
}

void FakeCudaBackend::unary(UnaryOp op, const Tensor& x, Tensor& y, const UnaryParams& p) {
  Tensor yy = on_host(y, "unary");
  cpu().unary(op, on_host(x, "unary"), yy, p);
}

void FakeCudaBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                                     const UnaryParams& p) {
  const char* m = "unary_backward";
  Tensor g = on_host(gx, m);
  cpu().unary_backward(op, on_host(x, m), on_host(y, m), on_host(gy, m), g, p);
}

void FakeCudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  Tensor o = on_host(out, "binary");
  cpu().binary(op, on_host(a, "binary"), on_host(b, "binary"), o);
}

void FakeCudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  Tensor o = on_host(out, "where");
  cpu().where(on_host(cond, "where"), on_host(a, "where"), on_host(b, "where"), o);
}

void FakeCudaBackend::reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes, Tensor& out) {
  Tensor o = on_host(out, "reduce");
  cpu().reduce(op, on_host(x, "reduce"), axes, o);
}

void FakeCudaBackend::arg_reduce(ArgReduceOp op, const Tensor& x, int axis, Tensor& out) {
  Tensor o = on_host(out, "arg_reduce");
  cpu().arg_reduce(op, on_host(x, "arg_reduce"), axis, o);
}

void FakeCudaBackend::gemm(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, double alpha,
                           const Tensor& a, int64_t stride_a, const Tensor& b, int64_t stride_b, double beta,
                           Tensor& c, int64_t stride_c) {
  Tensor cc = on_host(c, "gemm");
  cpu().gemm(trans_a, trans_b, batch, m, n, k, alpha, on_host(a, "gemm"), stride_a, on_host(b, "gemm"), stride_b,
             beta, cc, stride_c);
}

void FakeCudaBackend::conv_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y,
                                   const ConvParams& p, bool relu) {
  const char* m = "conv_forward";
  Tensor yy = on_host(y, m);
  cpu().conv_forward(on_host(x, m), on_host(w, m), on_host(bias, m), yy, p, relu);
}

void FakeCudaBackend::conv_backward_data(const Tensor& gy, const Tensor& w, Tensor& gx, const ConvParams& p) {
  const char* m = "conv_backward_data";
  Tensor g = on_host(gx, m);
  cpu().conv_backward_data(on_host(gy, m), on_host(w, m), g, p);
}

void FakeCudaBackend::conv_backward_filter(const Tensor& x, const Tensor& gy, Tensor& gw, const ConvParams& p) {
  const char* m = "conv_backward_filter";
  Tensor g = on_host(gw, m);
  cpu().conv_backward_filter(on_host(x, m), on_host(gy, m), g, p);
}

void FakeCudaBackend::conv_backward(const Tensor& x, const Tensor& w, const Tensor& y, const Tensor& gy, Tensor& gx,
                                    Tensor& gw, Tensor& gbias, const ConvParams& p, bool relu) {
  const char* m = "conv_backward";
  Tensor a = on_host(gx, m), b = on_host(gw, m), c = on_host(gbias, m);
  cpu().conv_backward(on_host(x, m), on_host(w, m), on_host(y, m), on_host(gy, m), a, b, c, p, relu);
}

void FakeCudaBackend::pool_forward(PoolMode mode, const Tensor& x, Tensor& y, const WindowGeometry& p) {
  Tensor yy = on_host(y, "pool_forward");
  cpu().pool_forward(mode, on_host(x, "pool_forward"), yy, p);
}

void FakeCudaBackend::pool_backward(PoolMode mode, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                                    const WindowGeometry& p) {
  const char* m = "pool_backward";
  Tensor g = on_host(gx, m);
  cpu().pool_backward(mode, on_host(x, m), on_host(y, m), on_host(gy, m), g, p);
}

void FakeCudaBackend::image_transform(const Tensor& images, const Tensor& transforms, Tensor& out,
                                      Interpolation interp, FillMode fill, double fill_value) {
  const char* m = "image_transform";
  Tensor o = on_host(out, m);
  cpu().image_transform(on_host(images, m), on_host(transforms, m), o, interp, fill, fill_value);
}

void FakeCudaBackend::batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                                  double eps, Tensor& y, Tensor& mean, Tensor& var, Tensor& invstd) {
  const char* m = "batch_norm_forward_training";
  Tensor a = on_host(y, m), b = on_host(mean, m), c = on_host(var, m), d = on_host(invstd, m);
  cpu().batch_norm_forward_training(on_host(x, m), on_host(gamma, m), on_host(beta, m), eps, a, b, c, d);
}

void FakeCudaBackend::batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                                   const Tensor& mean, const Tensor& var, double eps, Tensor& y) {
  const char* m = "batch_norm_forward_inference";
  Tensor a = on_host(y, m);
  cpu().batch_norm_forward_inference(on_host(x, m), on_host(gamma, m), on_host(beta, m), on_host(mean, m),
                                     on_host(var, m), eps, a);
}

void FakeCudaBackend::batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& gamma, const Tensor& mean,
                                          const Tensor& invstd, double eps, Tensor& gx, Tensor& ggamma,
                                          Tensor& gbeta) {
  const char* m = "batch_norm_backward";
  Tensor a = on_host(gx, m), b = on_host(ggamma, m), c = on_host(gbeta, m);
  cpu().batch_norm_backward(on_host(x, m), on_host(gy, m), on_host(gamma, m), on_host(mean, m), on_host(invstd, m),
                            eps, a, b, c);
}

void FakeCudaBackend::softmax(const Tensor& x, Tensor& y, int axis, bool log) {
  Tensor yy = on_host(y, "softmax");
  cpu().softmax(on_host(x, "softmax"), yy, axis, log);
}

void FakeCudaBackend::softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, int axis, bool log) {
  const char* m = "softmax_backward";
  Tensor g = on_host(gx, m);
  cpu().softmax_backward(on_host(y, m), on_host(gy, m), g, axis, log);
}

void FakeCudaBackend::permute(const Tensor& x, const std::vector<int>& perm, Tensor& out) {
  Tensor o = on_host(out, "permute");
  cpu().permute(on_host(x, "permute"), perm, o);
}

void FakeCudaBackend::copy_region(const Tensor& src, const std::vector<int64_t>& src_start, Tensor& dst,
                                  const std::vector<int64_t>& dst_start, const std::vector<int64_t>& extent,
                                  bool accumulate) {
  Tensor d = on_host(dst, "copy_region");
  cpu().copy_region(on_host(src, "copy_region"), src_start, d, dst_start, extent, accumulate);
}

void FakeCudaBackend::gather(const Tensor& x, const Tensor& idx, int axis, Tensor& out) {
  Tensor o = on_host(out, "gather");
  cpu().gather(on_host(x, "gather"), on_host(idx, "gather"), axis, o);
}

void FakeCudaBackend::scatter_add(const Tensor& g, const Tensor& idx, int axis, Tensor& gx) {
  Tensor o = on_host(gx, "scatter_add");
  cpu().scatter_add(on_host(g, "scatter_add"), on_host(idx, "scatter_add"), axis, o);
}

void FakeCudaBackend::one_hot(const Tensor& idx, Tensor& out) {
  Tensor o = on_host(out, "one_hot");
  cpu().one_hot(on_host(idx, "one_hot"), o);
}

void FakeCudaBackend::random_uniform(Tensor& dst, double lo, double hi, Generator& gen) {
  Tensor d = on_host(dst, "random_uniform");
  cpu().random_uniform(d, lo, hi, gen);
}

void FakeCudaBackend::random_normal(Tensor& dst, double mean, double stddev, Generator& gen) {
  Tensor d = on_host(dst, "random_normal");
  cpu().random_normal(d, mean, stddev, gen);
}

void FakeCudaBackend::dropout_mask(Tensor& dst, double rate, double scale, Generator& gen) {
  Tensor d = on_host(dst, "dropout_mask");
  cpu().dropout_mask(d, rate, scale, gen);
}

void FakeCudaBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& loss,
                                            Tensor& probs) {
  const char* m = "softmax_cross_entropy";
  Tensor l = on_host(loss, m), p = on_host(probs, m);
  cpu().softmax_cross_entropy(on_host(logits, m), on_host(target, m), l, p);
}

void FakeCudaBackend::sparse_softmax_cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& loss,
                                                   Tensor& probs) {
  const char* m = "sparse_softmax_cross_entropy";
  Tensor l = on_host(loss, m), p = on_host(probs, m);
  cpu().sparse_softmax_cross_entropy(on_host(logits, m), on_host(labels, m), l, p);
}

void FakeCudaBackend::sparse_softmax_cross_entropy_backward(const Tensor& probs, const Tensor& labels,
                                                            const Tensor& gloss, Tensor& glogits) {
  const char* m = "sparse_softmax_cross_entropy_backward";
  Tensor g = on_host(glogits, m);
  cpu().sparse_softmax_cross_entropy_backward(on_host(probs, m), on_host(labels, m), on_host(gloss, m), g);
}

void FakeCudaBackend::sigmoid_binary_cross_entropy(const Tensor& logits, const Tensor& target, Tensor& out) {
  const char* m = "sigmoid_binary_cross_entropy";
  Tensor o = on_host(out, m);
  cpu().sigmoid_binary_cross_entropy(on_host(logits, m), on_host(target, m), o);
}

void FakeCudaBackend::optimizer_update(OptimizerRule rule, Tensor& param, const Tensor& grad,
                                       std::vector<Tensor>& slots, const OptimizerHyper& h) {
  const char* m = "optimizer_update";
  Tensor p = on_host(param, m);
  std::vector<Tensor> s;
  s.reserve(slots.size());
  for (const Tensor& t : slots) s.push_back(on_host(t, m));
  cpu().optimizer_update(rule, p, on_host(grad, m), s, h);
}

// --- the switch ---------------------------------------------------------------------------------

namespace {
std::mutex g_switch_mu;
std::atomic<bool> g_on{false};
DeviceAllocatorProvider g_prev_provider = nullptr;
DeviceToHostCopy g_prev_to_host = nullptr;
}  // namespace

Backend& fake_backend(Device device) {
  if (device != kFakeDevice)
    throw UnsupportedError("no backend for device " + device.str() + ": the fake GPU (for tests) has only cuda:0");
  static FakeCudaBackend b;
  return b;
}

bool fake_cuda_device_enabled() { return g_on.load(); }

bool enable_fake_cuda_device(bool on) {
  std::lock_guard<std::mutex> lock(g_switch_mu);
  const bool was = g_on.load();
  if (on == was) return was;
  if (on) {
    g_prev_provider = device_allocator_provider(DeviceType::CUDA);
    g_prev_to_host = device_to_host_copy(DeviceType::CUDA);
    set_device_allocator_provider(DeviceType::CUDA, [](Device d) -> Allocator& {
      fake_backend(d);  // throws for devices other than cuda:0
      return fake_allocator();
    });
    set_device_to_host_copy(DeviceType::CUDA, [](const Tensor& src, Tensor& dst) { fake_backend(src.device()).copy(src, dst); });
    g_on.store(true);
  } else {
    g_on.store(false);
    set_device_allocator_provider(DeviceType::CUDA, g_prev_provider);
    set_device_to_host_copy(DeviceType::CUDA, g_prev_to_host);
    // New state must not go to a device that may no longer exist.
    if (default_device().type == DeviceType::CUDA) set_default_device(cpu_device());
  }
  return was;
}

}  // namespace rk::fake
