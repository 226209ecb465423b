// Counter-based random numbers (Philox-4x32-10, Salmon et al. 2011). Element i of a draw
// depends only on (seed, offset, i), so results are identical for any thread count or device.
#pragma once
#include <cstdint>

namespace rk {

/// A seeded stream: each draw consumes a range of counters and advances `offset`.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  /// Restarts the stream at counter 0 with `seed`.
  void seed(uint64_t seed) { seed_ = seed; offset_ = 0; }
  uint64_t seed_value() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }
  /// Reserves `n` 128-bit counter blocks (4 uint32 each) and returns the first one's index.
  uint64_t reserve(uint64_t n) { uint64_t o = offset_; offset_ += n; return o; }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

/// The four 32-bit outputs of Philox-4x32-10 for counter `counter` under key `seed`.
void philox4x32(uint64_t seed, uint64_t counter, uint32_t out[4]);
/// Uniform float in [0, 1) from 32 random bits (24-bit mantissa resolution).
inline float uint_to_unit_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
/// Uniform double in [0, 1) from 64 random bits (53-bit resolution).
inline double uint_to_unit_double(uint32_t hi, uint32_t lo) {
  return static_cast<double>(((static_cast<uint64_t>(hi) << 32) | lo) >> 11) * (1.0 / 9007199254740992.0);
}

/// The process-wide default generator (seeded from R's RNG by the glue unless set explicitly).
Generator& default_generator();

}  // namespace rk
