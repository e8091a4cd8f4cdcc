// Adam, SGD and the EMA of weights (see optim.h).
#include "layers/optim.h"

#include <map>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "kernels/kernels.h"

namespace ember {

Optimizer::Optimizer(const StateDict& named_params) : params_(named_params) {
  for (const auto& p : params_)
    EMBER_CHECK(p.second.defined() && p.second.requires_grad(),
                "optimizer: parameter '" << p.first << "' is undefined or does not require grad");
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.second.zero_grad();
}

StateDict Optimizer::zeros_like_params(const std::string& prefix) const {
  StateDict out;
  for (const auto& p : params_) out.emplace_back(prefix + p.first, Tensor::zeros(p.second.shape(), p.second.device()));
  return out;
}

void Optimizer::check_state_dict(const StateDict& sd) const {
  StateDict mine = state_dict();
  std::map<std::string, Tensor> given(sd.begin(), sd.end());
  EMBER_CHECK(given.size() == sd.size(), "optimizer load_state_dict: duplicated names");
  std::string err;
  for (const auto& kv : mine) {
    auto it = given.find(kv.first);
    if (it == given.end()) err += "\n  missing: " + kv.first;
    else if (it->second.shape() != kv.second.shape())
      err += "\n  shape mismatch: " + kv.first + " (given " + it->second.shape().str() + ", expected " +
             kv.second.shape().str() + ")";
    if (it != given.end()) given.erase(it);
  }
  for (const auto& kv : given) err += "\n  unexpected: " + kv.first;
  EMBER_CHECK(err.empty(), "optimizer load_state_dict:" << err);
}

void Optimizer::load_state_dict(const StateDict& sd) {
  check_state_dict(sd);
  StateDict mine = state_dict();
  std::map<std::string, Tensor> src(sd.begin(), sd.end());
  for (const auto& kv : mine) kv.second.copy_(src.at(kv.first));
}

namespace {
// The parameters that have a gradient, with their state tensors, grouped for one launch.
struct Batch {
  std::vector<Tensor> p, g, s1, s2;
};
Device batch_device(const std::vector<Tensor>& ps) { return ps.empty() ? Device::CPU : ps.front().device(); }

// Gathers the parameters that have a gradient, with their slots of the state lists s1, s2
// (each empty, or one entry per parameter).
Batch gather(const StateDict& params, const StateDict& s1, const StateDict& s2) {
  Batch b;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i].second;
    if (!p.grad().defined()) continue;
    b.p.push_back(p);
    b.g.push_back(p.grad());
    if (!s1.empty()) b.s1.push_back(s1[i].second);
    if (!s2.empty()) b.s2.push_back(s2[i].second);
  }
  return b;
}
}  // namespace

// ---- Adam -----------------------------------------------------------------------------------

Adam::Adam(const StateDict& named_params, const AdamOptions& opt) : Optimizer(named_params), options(opt) {
  lr = opt.lr;
  m_ = zeros_like_params("m.");
  v_ = zeros_like_params("v.");
}

void Adam::step() {
  NoGradGuard ng;
  Batch b = gather(params_, m_, v_);
  ++steps_;
  if (b.p.empty()) return;
  EMBER_DISPATCH("adam_update", batch_device(b.p), adam_update, b.p, b.g, b.s1, b.s2, lr, options.beta1,
                 options.beta2, options.eps, options.weight_decay, steps_);
}

StateDict Adam::state_dict() const {
  StateDict out = m_;
  out.insert(out.end(), v_.begin(), v_.end());
  return out;
}

// ---- SGD ------------------------------------------------------------------------------------

SGD::SGD(const StateDict& named_params, const SGDOptions& opt) : Optimizer(named_params), options(opt) {
  lr = opt.lr;
  if (opt.momentum != 0.0f) bufs_ = zeros_like_params("momentum_buffer.");
}

void SGD::step() {
  NoGradGuard ng;
  Batch b = gather(params_, bufs_, {});
  ++steps_;
  if (b.p.empty()) return;
  EMBER_DISPATCH("sgd_update", batch_device(b.p), sgd_update, b.p, b.g, b.s1, lr, options.momentum,
                 options.weight_decay);
}

StateDict SGD::state_dict() const { return bufs_; }

// ---- EMA ------------------------------------------------------------------------------------

EMA::EMA(const Module& model, Module& shadow, float d) : decay(d), model_(model), shadow_(shadow) {
  NoGradGuard ng;
  shadow_.load_state_dict(model_.state_dict());
}

void EMA::update() {
  NoGradGuard ng;
  StateDict sp = shadow_.named_parameters(), mp = model_.named_parameters();
  EMBER_CHECK(sp.size() == mp.size(), "EMA: model has " << mp.size() << " parameters, shadow " << sp.size());
  std::vector<Tensor> e, p;
  for (size_t i = 0; i < sp.size(); ++i) {
    EMBER_CHECK(sp[i].first == mp[i].first && sp[i].second.shape() == mp[i].second.shape(),
                "EMA: parameter " << i << " differs: model '" << mp[i].first << "' " << mp[i].second.shape()
                                  << ", shadow '" << sp[i].first << "' " << sp[i].second.shape());
    e.push_back(sp[i].second);
    p.push_back(mp[i].second);
  }
  if (!e.empty()) EMBER_DISPATCH("ema_update", batch_device(e), ema_update, e, p, decay);
  StateDict sb = shadow_.named_buffers(), mb = model_.named_buffers();
  for (size_t i = 0; i < sb.size() && i < mb.size(); ++i) sb[i].second.copy_(mb[i].second);
}

}  // namespace ember
