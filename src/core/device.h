// Where a tensor's memory lives. All tensors of one op share a device.
#pragma once
#include <string>

namespace rk {

/// Kind of device memory.
enum class DeviceType { CPU, CUDA };

/// A device: its type and, for CUDA, the ordinal.
struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  /// "cpu" or "cuda:N".
  std::string str() const {
    return type == DeviceType::CPU ? std::string("cpu") : "cuda:" + std::to_string(index);
  }
};

/// The CPU device.
inline Device cpu_device() { return Device{}; }

}  // namespace rk
