#include "backend/cpu/cpu_features.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define RK_X86 1
#endif

namespace rk::cpu {
namespace {

#ifdef RK_X86
// Inline asm instead of _xgetbv() so this TU compiles without -mxsave.
uint64_t read_xcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

SimdLevel probe() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return SimdLevel::Portable;
  const unsigned max_leaf = eax;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return SimdLevel::Portable;
  const bool osxsave = (ecx >> 27) & 1u;
  const bool avx = (ecx >> 28) & 1u;
  const bool fma = (ecx >> 12) & 1u;
  if (!osxsave || !avx || max_leaf < 7) return SimdLevel::Portable;
  const uint64_t xcr0 = read_xcr0();
  // The OS must save XMM (bit 1) and YMM (bit 2) state or AVX registers get clobbered on context switch.
  if ((xcr0 & 0x6u) != 0x6u) return SimdLevel::Portable;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool avx2 = (ebx >> 5) & 1u;
  if (!(avx2 && fma)) return SimdLevel::Portable;
  const bool f = (ebx >> 16) & 1u;
  const bool dq = (ebx >> 17) & 1u;
  const bool bw = (ebx >> 30) & 1u;
  const bool vl = (ebx >> 31) & 1u;
  // Opmask (bit 5), upper ZMM0-15 (bit 6) and ZMM16-31 (bit 7) must all be OS-managed.
  const bool zmm_state = (xcr0 & 0xE0u) == 0xE0u;
  if (f && dq && bw && vl && zmm_state) return SimdLevel::Avx512;
  return SimdLevel::Avx2;
}
#else
SimdLevel probe() { return SimdLevel::Portable; }
#endif

SimdLevel clamp(SimdLevel want) {
  const SimdLevel best = detected_simd_level();
  return static_cast<int>(want) > static_cast<int>(best) ? best : want;
}

SimdLevel initial_level() {
  SimdLevel level = detected_simd_level();
  const char* env = std::getenv("RKERAS_SIMD");
  if (env != nullptr) {
    if (std::strcmp(env, "portable") == 0) level = SimdLevel::Portable;
    else if (std::strcmp(env, "avx2") == 0) level = clamp(SimdLevel::Avx2);
    else if (std::strcmp(env, "avx512") == 0) level = clamp(SimdLevel::Avx512);
  }
  return level;
}

// -1 means "not yet initialised"; atomics keep concurrent first use race-free.
std::atomic<int> g_active{-1};

}  // namespace

SimdLevel detected_simd_level() {
  static const SimdLevel level = probe();
  return level;
}

SimdLevel active_simd_level() {
  int v = g_active.load(std::memory_order_relaxed);
  if (v < 0) {
    int expected = -1;
    g_active.compare_exchange_strong(expected, static_cast<int>(initial_level()));
    v = g_active.load(std::memory_order_relaxed);
  }
  return static_cast<SimdLevel>(v);
}

void set_simd_level(SimdLevel level) {
  g_active.store(static_cast<int>(clamp(level)), std::memory_order_relaxed);
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Avx512: return "avx512";
    case SimdLevel::Avx2: return "avx2";
    default: return "portable";
  }
}

}  // namespace rk::cpu
