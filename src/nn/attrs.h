// Layer, loss, metric and optimizer settings as the R side passes them: a flat map of
// named numbers, number vectors and strings (the Keras config, already validated in R).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rk::nn {

/// One setting: a number vector (scalars have length 1; NA/None is NaN) or a string.
struct Attr {
  std::vector<double> nums;
  std::string str;
  bool is_str = false;
};

/// Named settings with typed, defaulted getters; a wrong type or a missing required key throws ValueError.
class Attrs {
 public:
  /// Sets a numeric setting.
  void set(const std::string& key, std::vector<double> v) { m_[key] = Attr{std::move(v), {}, false}; }
  /// Sets a string setting.
  void set(const std::string& key, std::string s) { m_[key] = Attr{{}, std::move(s), true}; }
  bool has(const std::string& key) const { return m_.count(key) > 0; }
  /// Scalar number (NaN if the value is NA); `def` if absent.
  double num(const std::string& key, double def) const;
  /// Required scalar number.
  double num(const std::string& key) const;
  /// Scalar integer; `def` if absent.
  int64_t integer(const std::string& key, int64_t def) const;
  /// Scalar logical (non-zero = true); `def` if absent.
  bool flag(const std::string& key, bool def) const;
  /// String; `def` if absent.
  std::string str(const std::string& key, const std::string& def) const;
  /// Integer vector (NA -> -1); empty if absent.
  std::vector<int64_t> ints(const std::string& key) const;
  /// Number vector; empty if absent.
  std::vector<double> nums(const std::string& key) const;
  const std::map<std::string, Attr>& all() const { return m_; }

 private:
  const Attr* find(const std::string& key, bool want_str) const;
  std::map<std::string, Attr> m_;
};

}  // namespace rk::nn
