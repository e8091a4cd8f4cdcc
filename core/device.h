// Where a tensor lives. Moving between devices is always explicit (Tensor::to).
#pragma once
#include <ostream>
#include <string>

namespace ember {

enum class Device { CPU, CUDA };

inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }
inline std::ostream& operator<<(std::ostream& os, Device d) { return os << device_name(d); }

}  // namespace ember
