// Module: recursive registration, state_dict and strict loading (see module.h).
#include "layers/module.h"

#include <map>
#include <set>
#include <sstream>

#include "core/error.h"

namespace ember {

Tensor Module::forward(const Tensor&) { EMBER_FAIL("Module::forward: this module has no one-tensor forward"); }

void Module::check_new_name(const std::string& name) const {
  EMBER_CHECK(!name.empty() && name.find('.') == std::string::npos,
              "Module: name '" << name << "' must be non-empty and contain no '.'");
  for (const Entry& e : params_) EMBER_CHECK(e.name != name, "Module: '" << name << "' is already a parameter");
  for (const Entry& e : buffers_) EMBER_CHECK(e.name != name, "Module: '" << name << "' is already a buffer");
  for (const auto& c : children_) EMBER_CHECK(c.first != name, "Module: '" << name << "' is already a child module");
}

void Module::register_parameter(const std::string& name, Tensor* slot) {
  check_new_name(name);
  EMBER_CHECK(slot && slot->defined(), "Module::register_parameter: '" << name << "' is undefined");
  slot->requires_grad_(true);
  params_.push_back({name, slot});
}

void Module::register_buffer(const std::string& name, Tensor* slot) {
  check_new_name(name);
  EMBER_CHECK(slot && slot->defined(), "Module::register_buffer: '" << name << "' is undefined");
  buffers_.push_back({name, slot});
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_new_name(name);
  EMBER_CHECK(m != nullptr, "Module::register_module: '" << name << "' is null");
  m->train(training_);
  children_.emplace_back(name, std::move(m));
}

void Module::rename_parameter(const std::string& old_name, const std::string& new_name, Tensor* slot) {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].name == old_name) {
      params_.erase(params_.begin() + static_cast<std::ptrdiff_t>(i));
      register_parameter(new_name, slot);
      return;
    }
  }
  EMBER_FAIL("Module::rename_parameter: no parameter named '" << old_name << "'");
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

void Module::collect(const std::string& prefix, bool params, bool buffers,
                     std::vector<std::pair<std::string, Tensor*>>& out) const {
  if (params)
    for (const Entry& e : params_) out.emplace_back(prefix + e.name, e.slot);
  if (buffers)
    for (const Entry& e : buffers_) out.emplace_back(prefix + e.name, e.slot);
  for (const auto& c : children_) c.second->collect(prefix + c.first + ".", params, buffers, out);
}

namespace {
StateDict snapshot(const std::vector<std::pair<std::string, Tensor*>>& slots) {
  StateDict sd;
  sd.reserve(slots.size());
  for (const auto& s : slots) sd.emplace_back(s.first, *s.second);
  return sd;
}
}  // namespace

StateDict Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor*>> s;
  collect("", true, false, s);
  return snapshot(s);
}

StateDict Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor*>> s;
  collect("", false, true, s);
  return snapshot(s);
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& p : named_parameters()) out.push_back(p.second);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

// PyTorch's order: per module, parameters then buffers, then the children.
StateDict Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor*>> s;
  collect("", true, true, s);
  return snapshot(s);
}

void Module::check_state_dict(const StateDict& sd, bool strict) const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, true, slots);
  std::map<std::string, const Tensor*> given;
  std::vector<std::string> duplicated;
  for (const auto& kv : sd)
    if (!given.emplace(kv.first, &kv.second).second) duplicated.push_back(kv.first);

  std::vector<std::string> missing, mismatched;
  std::set<std::string> known;
  for (const auto& s : slots) {
    known.insert(s.first);
    auto it = given.find(s.first);
    if (it == given.end()) {
      missing.push_back(s.first);
    } else if (!it->second->defined() || it->second->shape() != s.second->shape()) {
      std::ostringstream os;
      os << s.first << " (given " << (it->second->defined() ? it->second->shape().str() : "undefined")
         << ", module has " << s.second->shape() << ")";
      mismatched.push_back(os.str());
    }
  }
  std::vector<std::string> unexpected;
  for (const auto& kv : sd)
    if (!known.count(kv.first)) unexpected.push_back(kv.first);

  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s;
  };
  std::ostringstream err;
  if (!duplicated.empty()) err << "\n  duplicated keys: " << list(duplicated);
  if (!mismatched.empty()) err << "\n  shape mismatch: " << list(mismatched);
  if (strict && !missing.empty()) err << "\n  missing keys: " << list(missing);
  if (strict && !unexpected.empty()) err << "\n  unexpected keys: " << list(unexpected);
  EMBER_CHECK(err.str().empty(), "load_state_dict" << (strict ? " (strict)" : "") << ":" << err.str());
}

void Module::load_state_dict(const StateDict& sd, bool strict) {
  check_state_dict(sd, strict);
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, true, slots);
  std::map<std::string, const Tensor*> given;
  for (const auto& kv : sd) given.emplace(kv.first, &kv.second);
  for (const auto& s : slots) {
    auto it = given.find(s.first);
    if (it != given.end()) s.second->copy_(*it->second);
  }
}

void Module::to(Device device) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, true, slots);
  for (const auto& s : slots) {
    Tensor& t = *s.second;
    if (t.device() == device) continue;
    bool rg = t.requires_grad();
    t = t.detach().to(device);
    if (rg) t.requires_grad_(true);
  }
}

Device Module::device() const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, true, slots);
  return slots.empty() ? Device::CPU : slots.front().second->device();
}

void Module::zero_grad() {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, false, slots);
  for (const auto& s : slots) s.second->zero_grad();
}

}  // namespace ember
