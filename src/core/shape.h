// Tensor shapes (row-major) and the broadcasting rules every op shares.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace rk {

/// Dimensions of a row-major tensor; rank 0 is a scalar with one element.
class Shape {
 public:
  Shape() = default;
  /// Shape from a list of non-negative extents; throws ShapeError on a negative one.
  Shape(std::initializer_list<int64_t> dims);
  /// Shape from a vector of non-negative extents; throws ShapeError on a negative one.
  explicit Shape(std::vector<int64_t> dims);

  /// Number of dimensions.
  int rank() const { return static_cast<int>(dims_.size()); }
  /// Extent of dimension `i` (0-based; negative counts from the end).
  int64_t operator[](int i) const { return dims_[static_cast<size_t>(i < 0 ? i + rank() : i)]; }
  /// Product of the extents (1 for a scalar).
  int64_t numel() const;
  /// The extents as a vector.
  const std::vector<int64_t>& dims() const { return dims_; }
  /// Row-major strides in elements.
  std::vector<int64_t> strides() const;
  /// "(2, 3, 4)" as Keras prints shapes.
  std::string str() const;

  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }

 private:
  std::vector<int64_t> dims_;
};

/// NumPy broadcast of two shapes; throws ShapeError naming `op` and both shapes if incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
/// Normalises a possibly negative axis for a tensor of rank `rank`; throws IndexError if out of range.
int normalize_axis(int axis, int rank, const char* op);
/// Normalises and de-duplicates axes (sorted ascending); empty `axes` means all axes.
std::vector<int> normalize_axes(const std::vector<int>& axes, int rank, const char* op);
/// The shape left after reducing `axes` (sorted, normalised), keeping them as size-1 if `keepdims`.
Shape reduced_shape(const Shape& s, const std::vector<int>& axes, bool keepdims);

}  // namespace rk
