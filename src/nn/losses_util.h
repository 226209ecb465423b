// Helpers shared by the loss, metric and trainer sources (internal to src/nn).
#pragma once
#include <string>

#include "core/tensor.h"

namespace rk::nn::detail {

/// x without its last axis (which must be 1); a free reshape.
Tensor squeeze_last(const Tensor& x);
/// x with a trailing axis of 1; a free reshape.
Tensor expand_last(const Tensor& x);
/// Keras's squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1 = True): when the ranks differ by
/// one and the longer has a trailing 1, squeeze it (or expand a rank-1 partner instead).
void squeeze_or_expand_to_same_rank(Tensor& x1, Tensor& x2);
/// The snake_case Keras function name for a loss/metric alias ("mse", "MeanSquaredError", ...).
std::string canonical_kind(const std::string& kind);

}  // namespace rk::nn::detail
