// GPU queries from R: whether this build has the CUDA backend, what cudart sees, device
// properties, the CUDA allocator's statistics, TF32. Every function works in a CPU-only build
// and on machines without a GPU or driver (they report that instead of failing to load).
// While the fake GPU (tests only: backend/fake, RKERAS_FAKE_GPU=1) is on, they report it as cuda:0.
#include "rcpp_glue.h"

#include <string>
#include <thread>

#include "backend/fake/fake_device.h"

#if RKERAS_HAVE_CUDA
#include "backend/cuda/cuda_api.h"
#endif

namespace {
// R frees tensors of unreachable R objects only when its GC runs: on a failed cudaMalloc (or a
// full fake GPU) the allocator runs it (from R's main thread only: the thread that loads the
// package) and retries.
const std::thread::id g_load_thread = std::this_thread::get_id();
void run_r_gc_on_main_thread() {
  if (std::this_thread::get_id() == g_load_thread) R_gc();
}
struct InstallGpuOomHooks {
  InstallGpuOomHooks() {
#if RKERAS_HAVE_CUDA
    rk::cuda::set_oom_hook(run_r_gc_on_main_thread);
#endif
    rk::fake::fake_allocator().set_oom_hook(run_r_gc_on_main_thread);
  }
} install_gpu_oom_hooks;

// The allocator of GPU `device`: the fake's while it is on, else the CUDA backend's.
rk::Allocator& gpu_allocator(int device) {
  if (rk::fake::fake_cuda_device_enabled()) return rk::allocator_for(rk::Device{rk::DeviceType::CUDA, device});
#if RKERAS_HAVE_CUDA
  return rk::cuda::allocator(device);
#else
  throw rk::UnsupportedError("this build of rkeras has no CUDA backend");
#endif
}
}  // namespace

/// list(built, device_count, reason, runtime_version, driver_version, cudnn_version, fake).
// [[Rcpp::export(rng = false)]]
Rcpp::List rk_cuda_status() {
  return rkglue::guard([] {
    const bool fake = rk::fake::fake_cuda_device_enabled();
#if RKERAS_HAVE_CUDA
    const rk::cuda::Availability& a = rk::cuda::availability();
    return Rcpp::List::create(Rcpp::Named("built") = true, Rcpp::Named("device_count") = fake ? 1 : a.device_count,
                              Rcpp::Named("reason") = fake ? std::string() : a.reason,
                              Rcpp::Named("runtime_version") = rk::cuda::runtime_version(),
                              Rcpp::Named("driver_version") = fake ? 0 : rk::cuda::driver_version(),
                              Rcpp::Named("cudnn_version") = rk::cuda::cudnn_version(), Rcpp::Named("fake") = fake);
#else
    return Rcpp::List::create(
        Rcpp::Named("built") = false, Rcpp::Named("device_count") = fake ? 1 : 0,
        Rcpp::Named("reason") = fake ? std::string()
                                     : std::string("this build of rkeras has no CUDA backend (configure found no "
                                                   "usable CUDA toolkit with cuBLAS and cuDNN, or RKERAS_CUDA=no "
                                                   "was set)"),
        Rcpp::Named("runtime_version") = 0, Rcpp::Named("driver_version") = 0, Rcpp::Named("cudnn_version") = 0,
        Rcpp::Named("fake") = fake);
#endif
  });
}

/// Properties of device `device` as a list (name, memory, compute capability, ...).
// [[Rcpp::export(rng = false)]]
Rcpp::List rk_gpu_device(int device) {
  return rkglue::guard([&] {
    if (rk::fake::fake_cuda_device_enabled()) {
      rk::fake::fake_backend(rk::Device{rk::DeviceType::CUDA, device});  // throws for all but cuda:0
      const rk::fake::FakeCudaAllocator& a = rk::fake::fake_allocator();
      return Rcpp::List::create(
          Rcpp::Named("device") = device, Rcpp::Named("name") = std::string("rkeras fake GPU (host memory, for tests)"),
          Rcpp::Named("memory_total") = static_cast<double>(a.capacity()),
          Rcpp::Named("memory_free") = static_cast<double>(a.free_bytes()),
          Rcpp::Named("compute_capability") = std::string("0.0"), Rcpp::Named("multiprocessors") = 0);
    }
#if RKERAS_HAVE_CUDA
    const rk::cuda::DeviceInfo d = rk::cuda::device_info(device);
    return Rcpp::List::create(
        Rcpp::Named("device") = d.index, Rcpp::Named("name") = d.name,
        Rcpp::Named("memory_total") = static_cast<double>(d.total_memory),
        Rcpp::Named("memory_free") = static_cast<double>(d.free_memory),
        Rcpp::Named("compute_capability") = std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor),
        Rcpp::Named("multiprocessors") = d.multiprocessors);
#else
    throw rk::UnsupportedError("this build of rkeras has no CUDA backend");
    return Rcpp::List();
#endif
  });
}

/// Statistics of the GPU allocator of `device`: current, peak, cached (bytes), n_allocs, n_cache_hits.
// [[Rcpp::export(rng = false)]]
Rcpp::NumericVector rk_gpu_allocator_stats(int device) {
  return rkglue::guard([&] {
    const rk::AllocatorStats s = gpu_allocator(device).stats();
    return Rcpp::NumericVector::create(
        Rcpp::Named("current") = static_cast<double>(s.current), Rcpp::Named("peak") = static_cast<double>(s.peak),
        Rcpp::Named("cached") = static_cast<double>(s.cached),
        Rcpp::Named("n_allocs") = static_cast<double>(s.n_allocs),
        Rcpp::Named("n_cache_hits") = static_cast<double>(s.n_cache_hits));
  });
}

/// Returns the cached free blocks of device `device` to the driver (`reset_peak`: also resets the peak).
// [[Rcpp::export(rng = false)]]
SEXP rk_gpu_allocator_empty_cache(int device, bool reset_peak) {
  return rkglue::guard([&] {
    rk::Allocator& a = gpu_allocator(device);
    a.empty_cache();
    if (reset_peak) a.reset_peak();
    return R_NilValue;
  });
}

/// Sets whether float32 GEMMs may use TF32; returns the previous setting (FALSE in CPU builds).
// [[Rcpp::export(rng = false)]]
bool rk_gpu_set_tf32(bool on) {
  return rkglue::guard([&] {
#if RKERAS_HAVE_CUDA
    const bool prev = rk::cuda::allow_tf32();
    rk::cuda::set_allow_tf32(on);
    return prev;
#else
    (void)on;
    return false;
#endif
  });
}

/// TESTING ONLY: switches the fake GPU (cuda:0 in host memory, CPU kernels) on or off; returns the
/// previous state. Off also puts the engine's default device back on the CPU.
// [[Rcpp::export(rng = false)]]
bool rk_fake_gpu_enable(bool on) {
  return rkglue::guard([&] { return rk::fake::enable_fake_cuda_device(on); });
}

/// TESTING ONLY: sets the fake GPU's memory size in bytes (> 0); returns the previous size.
// [[Rcpp::export(rng = false)]]
double rk_fake_gpu_set_capacity(double bytes) {
  return rkglue::guard([&] {
    rk::fake::FakeCudaAllocator& a = rk::fake::fake_allocator();
    const double prev = static_cast<double>(a.capacity());
    a.set_capacity(static_cast<int64_t>(bytes));
    return prev;
  });
}

/// TESTING ONLY: the fake GPU's host<->device traffic since the last reset (h2d_bytes, h2d_count,
/// d2h_bytes, d2h_count); `reset`: set the counters to zero afterwards.
// [[Rcpp::export(rng = false)]]
Rcpp::NumericVector rk_fake_gpu_transfers(bool reset) {
  return rkglue::guard([&] {
    const rk::fake::TransferStats s = rk::fake::transfer_stats();
    if (reset) rk::fake::reset_transfer_stats();
    return Rcpp::NumericVector::create(Rcpp::Named("h2d_bytes") = static_cast<double>(s.h2d_bytes),
                                       Rcpp::Named("h2d_count") = static_cast<double>(s.h2d_count),
                                       Rcpp::Named("d2h_bytes") = static_cast<double>(s.d2h_bytes),
                                       Rcpp::Named("d2h_count") = static_cast<double>(s.d2h_count));
  });
}
