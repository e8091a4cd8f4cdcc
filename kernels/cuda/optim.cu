// CUDA optimiser updates (kernels/optim.inc; reference: kernels/cpu/optim.cpp): Adam, SGD with
// momentum and the parameter EMA, each ONE launch over every tensor of the list.
//
// Multi-tensor apply (as PyTorch's multi_tensor_apply): the tensors are cut into chunks of at
// most 64K elements; a chunk descriptor holds the chunk's pointers into each list (param,
// grad, state...) and its length; block b updates chunk b. A model's hundred small tensors
// then cost one launch instead of a hundred, and big tensors still spread over many blocks.
// The descriptor array lives on the device, cached per list (the parameters and state do not
// move between steps); it is uploaded again only when a pointer changed (new gradient
// tensors each step do that: a few KB, copied on the stream, no allocation and no sync).
// Elements move as float4 when a chunk's pointers are 16-byte aligned.
// Floor: Adam reads p, g, m, v and writes p, m, v: 28 bytes per element; SGD with momentum 20,
// plain SGD 12, EMA 12.
#include <cmath>
#include <cstring>
#include <list>
#include <vector>

#include "kernels/cuda/common.cuh"

namespace ember::cuda {

namespace {

constexpr int64_t kChunk = 65536;  // a multiple of 4: chunk starts keep the tensors' alignment
constexpr int kMaxLists = 4;

struct Chunk {
  float* p[kMaxLists];  // unused lists: nullptr
  int64_t n;
};

// Adam in PyTorch's order of operations (as kernels/cpu/optim.cpp): v[] = {param, grad, m, v};
// writes param, m, v.
struct AdamF {
  static constexpr int kLists = 4;
  static constexpr unsigned kWrites = 0b1101;
  float step_size, beta1, beta2, eps, weight_decay, bc2_sqrt;
  __device__ void operator()(float (&v)[4]) const {
    float g = v[1];
    if (weight_decay != 0.f) g += weight_decay * v[0];
    v[2] = beta1 * v[2] + (1.f - beta1) * g;
    v[3] = beta2 * v[3] + (1.f - beta2) * g * g;
    const float denom = sqrtf(v[3]) / bc2_sqrt + eps;
    v[0] -= step_size * (v[2] / denom);
  }
};

// SGD with momentum: v[] = {param, grad, buf}; writes param, buf.
struct SgdMomentumF {
  static constexpr int kLists = 3;
  static constexpr unsigned kWrites = 0b101;
  float lr, momentum, weight_decay;
  __device__ void operator()(float (&v)[3]) const {
    float g = v[1];
    if (weight_decay != 0.f) g += weight_decay * v[0];
    v[2] = momentum * v[2] + g;
    v[0] -= lr * v[2];
  }
};

// Plain SGD: v[] = {param, grad}; writes param.
struct SgdF {
  static constexpr int kLists = 2;
  static constexpr unsigned kWrites = 0b1;
  float lr, weight_decay;
  __device__ void operator()(float (&v)[2]) const {
    float g = v[1];
    if (weight_decay != 0.f) g += weight_decay * v[0];
    v[0] -= lr * g;
  }
};

// EMA: v[] = {ema, param}; writes ema.
struct EmaF {
  static constexpr int kLists = 2;
  static constexpr unsigned kWrites = 0b1;
  float decay;
  __device__ void operator()(float (&v)[2]) const { v[0] = decay * v[0] + (1.f - decay) * v[1]; }
};

template <class Update>
__global__ void multi_tensor_kernel(const Chunk* chunks, Update up) {
  constexpr int L = Update::kLists;
  const Chunk ch = chunks[blockIdx.x];
  bool vec = ch.n % 4 == 0;
#pragma unroll
  for (int l = 0; l < L; ++l) vec = vec && (reinterpret_cast<uintptr_t>(ch.p[l]) & 15u) == 0;
  if (vec) {
    for (int64_t q = threadIdx.x; q < ch.n / 4; q += blockDim.x) {
      float4 in[L];
#pragma unroll
      for (int l = 0; l < L; ++l) in[l] = reinterpret_cast<const float4*>(ch.p[l])[q];
      float r[4][L];
#pragma unroll
      for (int l = 0; l < L; ++l) r[0][l] = in[l].x, r[1][l] = in[l].y, r[2][l] = in[l].z, r[3][l] = in[l].w;
#pragma unroll
      for (int e = 0; e < 4; ++e) up(r[e]);
#pragma unroll
      for (int l = 0; l < L; ++l)
        if (Update::kWrites & (1u << l))
          reinterpret_cast<float4*>(ch.p[l])[q] = make_float4(r[0][l], r[1][l], r[2][l], r[3][l]);
    }
    return;
  }
  for (int64_t i = threadIdx.x; i < ch.n; i += blockDim.x) {
    float r[L];
#pragma unroll
    for (int l = 0; l < L; ++l) r[l] = ch.p[l][i];
    up(r);
#pragma unroll
    for (int l = 0; l < L; ++l)
      if (Update::kWrites & (1u << l)) ch.p[l][i] = r[l];
  }
}

// Cut parallel tensor lists into chunks (empty tensors contribute none).
std::vector<Chunk> make_chunks(const char* op, std::initializer_list<const std::vector<Tensor>*> lists) {
  std::vector<Chunk> chunks;
  const std::vector<Tensor>& first = **lists.begin();
  for (const std::vector<Tensor>* list : lists)
    EMBER_CHECK(list->size() == first.size(),
                op << ": tensor lists of different lengths (" << first.size() << " and " << list->size() << ")");
  for (size_t t = 0; t < first.size(); ++t) {
    const int64_t n = first[t].numel();
    for (const std::vector<Tensor>* list : lists)
      EMBER_CHECK((*list)[t].numel() == n && (*list)[t].is_cuda(),
                  op << ": tensor " << t << " is " << (*list)[t].shape() << " on " << (*list)[t].device()
                     << " where the parameter is " << first[t].shape() << " on cuda");
    for (int64_t start = 0; start < n; start += kChunk) {
      Chunk c{};
      int l = 0;
      for (const std::vector<Tensor>* list : lists) c.p[l++] = (*list)[t].data() + start;
      c.n = n - start < kChunk ? n - start : kChunk;
      chunks.push_back(c);
    }
  }
  return chunks;
}

// Device copies of chunk arrays, one per list of parameters (identified by the first list's
// pointers: params, or the EMA copies); a few entries cover a GAN's G, D and EMA updates.
struct ChunkCache {
  struct Entry {
    int kind;
    std::vector<float*> owners;  // chunk.p[0] of every chunk
    std::vector<Chunk> host;     // what the device copy holds; kept alive for the async copy
    DeviceBuffer<Chunk> device;
  };
  std::list<Entry> entries;  // most recently used first
  static constexpr size_t kMaxEntries = 8;

  const Chunk* upload(int kind, const std::vector<Chunk>& chunks) {
    std::vector<float*> owners(chunks.size());
    for (size_t i = 0; i < chunks.size(); ++i) owners[i] = chunks[i].p[0];
    auto it = entries.begin();
    while (it != entries.end() && !(it->kind == kind && it->owners == owners)) ++it;
    if (it == entries.end()) {
      if (entries.size() == kMaxEntries) entries.pop_back();
      entries.push_front(Entry{kind, owners, {}, DeviceBuffer<Chunk>(chunks.size())});
      it = entries.begin();
    } else {
      entries.splice(entries.begin(), entries, it);
      it = entries.begin();
    }
    Entry& e = *it;
    const size_t bytes = chunks.size() * sizeof(Chunk);
    if (e.host.size() != chunks.size() || std::memcmp(e.host.data(), chunks.data(), bytes) != 0) {
      e.host = chunks;
      // From pageable memory the runtime stages the bytes before returning, so rewriting
      // e.host at the next step is safe; the stream orders the copy after the kernels that
      // still read the previous contents.
      EMBER_CUDA_CHECK(cudaMemcpyAsync(e.device.data(), e.host.data(), bytes, cudaMemcpyHostToDevice, stream()));
    }
    return e.device.data();
  }
};

template <class Update>
void multi_tensor_apply(const char* op, int kind, std::initializer_list<const std::vector<Tensor>*> lists,
                        const Update& up) {
  static_assert(Update::kLists <= kMaxLists, "too many tensor lists");
  std::vector<Chunk> chunks = make_chunks(op, lists);
  if (chunks.empty()) return;
  EMBER_CHECK(chunks.size() < (size_t(1) << 31), op << ": " << chunks.size() << " chunks exceed the grid");
  static ChunkCache* cache = new ChunkCache;  // never destroyed: device memory outlives static destructors badly
  const Chunk* dev = cache->upload(kind, chunks);
  EMBER_LAUNCH(static_cast<unsigned>(chunks.size()), kLinearBlock, 0, stream(), multi_tensor_kernel<Update>)(dev, up);
  EMBER_CUDA_LAUNCH_CHECK();
}

enum Kind { kAdam, kSgdMomentum, kSgd, kEma };

}  // namespace

void adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& m,
                 const std::vector<Tensor>& v, float lr, float beta1, float beta2, float eps, float weight_decay,
                 int64_t step) {
  // Bias corrections in double on the host, once per call.
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  AdamF up{static_cast<float>(lr / bc1), beta1, beta2, eps, weight_decay, static_cast<float>(std::sqrt(bc2))};
  multi_tensor_apply("adam_update", kAdam, {&params, &grads, &m, &v}, up);
}

void sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& bufs,
                float lr, float momentum, float weight_decay) {
  if (momentum != 0.f)
    multi_tensor_apply("sgd_update", kSgdMomentum, {&params, &grads, &bufs}, SgdMomentumF{lr, momentum, weight_decay});
  else
    multi_tensor_apply("sgd_update", kSgd, {&params, &grads}, SgdF{lr, weight_decay});
}

void ema_update(const std::vector<Tensor>& ema, const std::vector<Tensor>& params, float decay) {
  multi_tensor_apply("ema_update", kEma, {&ema, &params}, EmaF{decay});
}

}  // namespace ember::cuda
