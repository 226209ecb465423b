// Runtime CPU feature detection and the process-wide SIMD dispatch level.
#pragma once

namespace rk::cpu {

/// Instruction-set tier used by the CPU kernels; ordered so that a larger value implies the smaller ones.
enum class SimdLevel { Portable = 0, Avx2 = 1, Avx512 = 2 };

/// Best level this CPU and OS support (AVX2+FMA with YMM state; AVX-512F/BW/DQ/VL with ZMM state); cached after the first call.
SimdLevel detected_simd_level();

/// Level the kernels dispatch to: detected_simd_level(), lowered by env RKERAS_SIMD=portable|avx2|avx512 at first use or by set_simd_level().
SimdLevel active_simd_level();

/// Sets the active level, clamped to detected_simd_level(); intended for tests and benchmarks, not thread-safe against running kernels.
void set_simd_level(SimdLevel level);

/// Static lowercase name of a level: "portable", "avx2" or "avx512".
const char* simd_level_name(SimdLevel level);

}  // namespace rk::cpu
