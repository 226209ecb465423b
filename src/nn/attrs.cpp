// Typed access to layer settings. Errors name the setting so a bad config from R (or a
// hand-written engine test) says which key was wrong and what it held.
#include "nn/attrs.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace rk::nn {

namespace {

std::string describe(const Attr& a) {
  if (a.is_str) return "the string \"" + a.str + "\"";
  if (a.nums.size() == 1) return std::isnan(a.nums[0]) ? std::string("NA") : std::to_string(a.nums[0]);
  return "a vector of length " + std::to_string(a.nums.size());
}

bool is_integral(double v) { return std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.2e18; }

}  // namespace

const Attr* Attrs::find(const std::string& key, bool want_str) const {
  auto it = m_.find(key);
  if (it == m_.end()) return nullptr;
  const Attr& a = it->second;
  if (a.is_str != want_str)
    throw ValueError("setting `" + key + "` must be " + (want_str ? "a string" : "a number") + ", got " +
                     describe(a));
  return &a;
}

double Attrs::num(const std::string& key, double def) const {
  const Attr* a = find(key, false);
  if (!a) return def;
  if (a->nums.size() != 1)
    throw ValueError("setting `" + key + "` must be a single number, got " + describe(*a));
  return a->nums[0];
}

double Attrs::num(const std::string& key) const {
  if (!has(key)) throw ValueError("required setting `" + key + "` is missing");
  return num(key, 0.0);
}

int64_t Attrs::integer(const std::string& key, int64_t def) const {
  const Attr* a = find(key, false);
  if (!a) return def;
  if (a->nums.size() != 1 || !is_integral(a->nums[0]))
    throw ValueError("setting `" + key + "` must be a single whole number, got " + describe(*a));
  return static_cast<int64_t>(a->nums[0]);
}

bool Attrs::flag(const std::string& key, bool def) const {
  const Attr* a = find(key, false);
  if (!a) return def;
  if (a->nums.size() != 1 || std::isnan(a->nums[0]))
    throw ValueError("setting `" + key + "` must be TRUE or FALSE, got " + describe(*a));
  return a->nums[0] != 0;
}

std::string Attrs::str(const std::string& key, const std::string& def) const {
  const Attr* a = find(key, true);
  return a ? a->str : def;
}

std::vector<int64_t> Attrs::ints(const std::string& key) const {
  const Attr* a = find(key, false);
  if (!a) return {};
  std::vector<int64_t> out;
  out.reserve(a->nums.size());
  for (double v : a->nums) {
    if (std::isnan(v)) {
      out.push_back(-1);  // NA / None
    } else if (is_integral(v)) {
      out.push_back(static_cast<int64_t>(v));
    } else {
      throw ValueError("setting `" + key + "` must hold whole numbers, got " + std::to_string(v));
    }
  }
  return out;
}

std::vector<double> Attrs::nums(const std::string& key) const {
  const Attr* a = find(key, false);
  return a ? a->nums : std::vector<double>{};
}

}  // namespace rk::nn
