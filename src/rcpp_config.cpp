// Engine configuration from R: CPU threads, SIMD level, allocator statistics, the engine
// generator's seed, and the load-time hook that lets the allocator run R's GC.
#include "rcpp_glue.h"

#include <cmath>
#include <cstdint>
#include <thread>

#include "backend/backend.h"
#include "backend/cpu/cpu_features.h"
#include "core/allocator.h"
#include "core/rng.h"

namespace {
std::thread::id g_main_thread;
}  // namespace

/// Installs the allocator's out-of-memory hook; called once from .onLoad.
// [[Rcpp::export(rng = false)]]
SEXP rk_glue_init() {
  return rkglue::guard([] {
    g_main_thread = std::this_thread::get_id();
    // R frees tensors held by unreachable R objects only when its GC runs; a full GC
    // (which also runs pending finalizers) may free enough for the retry to succeed.
    // R may only be entered from its main thread.
    rk::cpu_allocator().set_oom_hook([] {
      if (std::this_thread::get_id() == g_main_thread) R_gc();
    });
    return R_NilValue;
  });
}

// [[Rcpp::export(rng = false)]]
int rk_threads_get() {
  return rkglue::guard([] { return rk::num_threads(); });
}

// [[Rcpp::export(rng = false)]]
int rk_threads_set(int n) {
  return rkglue::guard([&] {
    int prev = rk::num_threads();
    rk::set_num_threads(n);
    return prev;
  });
}

/// Logical cores of this machine (the default thread count).
// [[Rcpp::export(rng = false)]]
int rk_cores() {
  return rkglue::guard([] {
    unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
  });
}

// [[Rcpp::export(rng = false)]]
std::string rk_simd_level() {
  return rkglue::guard([] { return std::string(rk::cpu::simd_level_name(rk::cpu::active_simd_level())); });
}

// [[Rcpp::export(rng = false)]]
SEXP rk_engine_seed(double seed) {
  return rkglue::guard([&] {
    if (!(seed >= 0) || seed != std::trunc(seed) || seed > 9007199254740992.0)
      throw rk::ValueError("seed must be a non-negative whole number, got " + std::to_string(seed));
    rk::default_generator().seed(static_cast<uint64_t>(seed));
    return R_NilValue;
  });
}

// [[Rcpp::export(rng = false)]]
Rcpp::NumericVector rk_allocator_stats() {
  return rkglue::guard([] {
    rk::AllocatorStats s = rk::cpu_allocator().stats();
    return Rcpp::NumericVector::create(
        Rcpp::Named("current") = static_cast<double>(s.current), Rcpp::Named("peak") = static_cast<double>(s.peak),
        Rcpp::Named("cached") = static_cast<double>(s.cached),
        Rcpp::Named("n_allocs") = static_cast<double>(s.n_allocs),
        Rcpp::Named("n_cache_hits") = static_cast<double>(s.n_cache_hits));
  });
}

// [[Rcpp::export(rng = false)]]
SEXP rk_allocator_empty_cache() {
  return rkglue::guard([] {
    rk::cpu_allocator().empty_cache();
    return R_NilValue;
  });
}

// [[Rcpp::export(rng = false)]]
SEXP rk_allocator_reset_peak() {
  return rkglue::guard([] {
    rk::cpu_allocator().reset_peak();
    return R_NilValue;
  });
}

/// Caps the CPU allocator at `bytes` (0 = no cap); for tests of the out-of-memory path.
// [[Rcpp::export(rng = false)]]
SEXP rk_allocator_set_limit(double bytes) {
  return rkglue::guard([&] {
    if (!(bytes >= 0) || bytes > 9.2e18) throw rk::ValueError("limit must be >= 0 bytes");
    rk::cpu_allocator().set_limit(static_cast<int64_t>(bytes));
    return R_NilValue;
  });
}
