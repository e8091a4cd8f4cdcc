// Strict reading of a model configuration's JSON fields (the config a checkpoint carries). A
// field that is present must be a number that fits the C++ field, or the error names the field;
// nlohmann's value() converted 1e20 to int with undefined behaviour (found by
// tests/fuzz/model_config.cpp) and 2^40 to int by truncation. An absent field keeps its default.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace ember::models {

// Require: j is an object (checked here, naming `who`).
template <class Int>
Int json_int(const nlohmann::json& j, const char* key, Int fallback, const char* who) {
  EMBER_CHECK(j.is_object(), who << ": the configuration must be a JSON object, got " << j.type_name());
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  bool fits = false;
  if (it->is_number_unsigned()) {
    fits = it->template get<uint64_t>() <= uint64_t(std::numeric_limits<Int>::max());
  } else if (it->is_number_integer()) {  // negative
    const int64_t v = it->template get<int64_t>();
    fits = std::is_signed<Int>::value && v >= int64_t(std::numeric_limits<Int>::min());
  }
  EMBER_CHECK(fits, who << ": '" << key << "' must be an integer in [" << +std::numeric_limits<Int>::min() << ", "
                        << +std::numeric_limits<Int>::max() << "], got " << it->dump());
  return it->is_number_unsigned() ? Int(it->template get<uint64_t>()) : Int(it->template get<int64_t>());
}

inline float json_float(const nlohmann::json& j, const char* key, float fallback, const char* who) {
  EMBER_CHECK(j.is_object(), who << ": the configuration must be a JSON object, got " << j.type_name());
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  const double v = it->is_number() ? it->get<double>() : std::nan("");
  EMBER_CHECK(std::isfinite(v) && std::fabs(v) <= double(std::numeric_limits<float>::max()),
              who << ": '" << key << "' must be a finite number, got " << it->dump());
  return float(v);
}

}  // namespace ember::models
