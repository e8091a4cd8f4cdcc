// The emulator's executor (emu.h, docs/emulation.md): blocks one after another, the threads of a
// block as fibers (plain and ASan builds) or OS threads (TSan build), barriers and warp
// collectives with divergence and deadlock checks, shared memory on the heap.
#include <sanitizer/common_interface_defs.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tests/emulation/emu_internal.h"
#include "tests/emulation/fiber.h"

#if defined(__SANITIZE_THREAD__)
#define EMBER_EMU_OS_THREADS 1
// A shuffle or an mma exchanges registers, not memory: it must not order the lanes' memory
// accesses for TSan, or it would hide a missing __syncwarp. Its bookkeeping is done with TSan
// blind to both the synchronisation and the accesses.
extern "C" void AnnotateIgnoreSyncBegin(const char* file, int line);
extern "C" void AnnotateIgnoreSyncEnd(const char* file, int line);
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#define EMBER_EMU_BLIND_BEGIN() (AnnotateIgnoreSyncBegin(__FILE__, __LINE__), __tsan_ignore_thread_begin())
#define EMBER_EMU_BLIND_END() (__tsan_ignore_thread_end(), AnnotateIgnoreSyncEnd(__FILE__, __LINE__))
#else
#define EMBER_EMU_BLIND_BEGIN() ((void)0)
#define EMBER_EMU_BLIND_END() ((void)0)
#endif

namespace ember::emu {

thread_local Thread* t_self = nullptr;

namespace {

// Thrown inside an emulated thread to unwind it when its block has failed.
struct Abort {};

constexpr int kMaxWords = 12;  // payload of one lane in a collective (the mma: 4 + 2 + 4 words)
enum class Kind { kNone, kSyncwarp, kShfl, kVote, kMma };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kSyncwarp: return "__syncwarp";
    case Kind::kShfl: return "a shuffle";
    case Kind::kVote: return "a vote";
    case Kind::kMma: return "mma.sync";
    default: return "?";
  }
}

struct Slot {
  uint32_t arrived = 0, consumed = 0;
  Kind kind = Kind::kNone;
  uint32_t words[32][kMaxWords];
};
struct Warp {
  uint32_t lanes = 0;   // lanes that exist (a partial last warp has fewer)
  uint32_t exited = 0;
  Slot slot[2];
};

}  // namespace

struct Block {
  uint3 bid;
  dim3 bdim, gdim;
  unsigned nthreads = 0;
  const char* kernel = "";
  std::vector<Thread> threads;
  std::vector<Warp> warps;
  std::unordered_map<const void*, std::pair<void*, size_t>> statics;  // EMBER_SHARED tag -> bytes
  void* dyn = nullptr;
  // __syncthreads
  unsigned bar_arrived = 0, exited = 0;
  uint64_t bar_gen = 0;
  const char* bar_file = nullptr;
  int bar_line = 0;
  std::string error;
  uint64_t progress = 0;  // bumped on every arrival or exit: no change in a full pass = deadlock
  std::mutex m;
  std::condition_variable cv;
  FiberSet* fibers = nullptr;
};

namespace {

void* alloc_nan(size_t bytes) {
  void* p = ::operator new(bytes, std::align_val_t(16));  // exactly `bytes`: ASan sees overruns
  std::memset(p, 0xff, bytes);  // 0xffffffff is a NaN: unwritten shared memory reads as NaN
  return p;
}
void free_aligned(void* p) { ::operator delete(p, std::align_val_t(16)); }

// Records the first error of the block and unwinds the calling emulated thread.
[[noreturn]] void fail(Block& b, const std::string& what) {
  if (b.error.empty()) b.error = what;
  b.cv.notify_all();
  throw Abort{};
}

std::string where(const Thread& t) {
  std::ostringstream s;
  s << "thread (" << t.tid.x << "," << t.tid.y << "," << t.tid.z << ") of block (" << t.block->bid.x << ","
    << t.block->bid.y << "," << t.block->bid.z << ")";
  return s.str();
}

// Waits, with `lk` held, until done() holds. Fibers yield to the scheduler (which detects a
// deadlock); OS threads wait on the block's condition variable with a watchdog.
template <class Done>
void wait_until(Block& b, std::unique_lock<std::mutex>& lk, Done done, const char* what) {
  const auto start = std::chrono::steady_clock::now();
  while (!done()) {
    if (!b.error.empty()) throw Abort{};
#ifdef EMBER_EMU_OS_THREADS
    b.cv.wait_for(lk, std::chrono::milliseconds(50));
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(60))
      fail(b, std::string("watchdog: ") + where(*t_self) + " waited 60 s at " + what);
#else
    (void)start;
    (void)what;
    lk.unlock();
    b.fibers->yield();
    lk.lock();
#endif
  }
  if (!b.error.empty()) throw Abort{};
}

}  // namespace

const uint3& block_idx() { return t_self->block->bid; }
const dim3& block_dim() { return t_self->block->bdim; }
const dim3& grid_dim() { return t_self->block->gdim; }

void syncthreads(const char* file, int line) {
  Thread& t = *t_self;
  Block& b = *t.block;
  std::unique_lock<std::mutex> lk(b.m);
  if (b.bar_arrived == 0) {
    b.bar_file = file, b.bar_line = line;
  } else if (b.bar_line != line || std::strcmp(b.bar_file, file) != 0) {
    fail(b, "divergent __syncthreads: " + where(t) + " waits at " + file + ":" + std::to_string(line) +
                " while others wait at " + b.bar_file + ":" + std::to_string(b.bar_line));
  }
  const uint64_t gen = b.bar_gen;
  ++b.progress;
  if (++b.bar_arrived == b.nthreads) {
    b.bar_arrived = 0;
    ++b.bar_gen;
    b.cv.notify_all();
    return;
  }
  wait_until(
      b, lk,
      [&] {
        if (b.bar_gen != gen) return true;
        if (b.exited > 0)
          fail(b, "divergent __syncthreads at " + std::string(file) + ":" + std::to_string(line) + ": " +
                      std::to_string(b.exited) + " thread(s) of block (" + std::to_string(b.bid.x) + "," +
                      std::to_string(b.bid.y) + "," + std::to_string(b.bid.z) +
                      ") exited without reaching it (a barrier in conditional code)");
        return false;
      },
      "__syncthreads");
}

namespace {

// The lanes of `mask` exchange kMaxWords words each; on return `out` is the slot holding all of
// them, valid until release(). Every existing lane must be in the mask: ember's code only uses
// full-warp collectives, and a missing lane is a bug (it would hang or read garbage on hardware).
Slot& join(Kind kind, unsigned mask, const uint32_t* in, int nwords, std::unique_lock<std::mutex>& lk) {
  Thread& t = *t_self;
  Block& b = *t.block;
  Warp& w = b.warps[t.linear / 32];
  const unsigned lane = t.linear % 32, bit = 1u << lane;
  if ((mask & w.lanes) != w.lanes)
    fail(b, std::string(kind_name(kind)) + " with mask 0x" + [&] { std::ostringstream s; s << std::hex << mask; return s.str(); }() +
                " in " + where(t) + ": not every lane of the warp takes part (the emulator, like ember's code, "
                "assumes full participation)");
  Slot& s = w.slot[t.seq & 1];
  if (s.arrived == 0) s.kind = kind;
  else if (s.kind != kind)
    fail(b, "divergent warp: " + where(t) + " is at " + kind_name(kind) + " while lanes of its warp are at " +
                kind_name(s.kind));
  if (nwords) std::memcpy(s.words[lane], in, sizeof(uint32_t) * nwords);  // __syncwarp carries none
  s.arrived |= bit;
  ++b.progress;
  if (s.arrived == w.lanes) b.cv.notify_all();
  wait_until(
      b, lk,
      [&] {
        if (s.arrived == w.lanes) return true;
        if (w.exited & ~s.arrived)
          fail(b, std::string(kind_name(kind)) + ": lanes of the warp of " + where(t) + " exited without joining it");
        return false;
      },
      kind_name(kind));
  return s;
}
void release(Slot& s) {
  Thread& t = *t_self;
  Warp& w = t.block->warps[t.linear / 32];
  s.consumed |= 1u << (t.linear % 32);
  if (s.consumed == w.lanes) s.arrived = s.consumed = 0, s.kind = Kind::kNone;
  ++t.seq;
}

struct Blind {
  Blind() { EMBER_EMU_BLIND_BEGIN(); }
  ~Blind() { EMBER_EMU_BLIND_END(); }
};

}  // namespace

void syncwarp(unsigned mask) {
  Block& b = *t_self->block;
  std::unique_lock<std::mutex> lk(b.m);
  Slot& s = join(Kind::kSyncwarp, mask, nullptr, 0, lk);
  release(s);
}

uint64_t shfl(unsigned mask, uint64_t bits, Shfl mode, int arg, int width) {
  Thread& t = *t_self;
  Block& b = *t.block;
  Blind blind;
  std::unique_lock<std::mutex> lk(b.m);
  if (width <= 0 || width > 32 || (width & (width - 1)))
    fail(b, "shuffle width " + std::to_string(width) + " is not a power of two <= 32");
  const uint32_t in[2] = {static_cast<uint32_t>(bits), static_cast<uint32_t>(bits >> 32)};
  Slot& s = join(Kind::kShfl, mask, in, 2, lk);
  // Source lane per the PTX ISA's shfl.sync: within segments of `width` lanes; out of the
  // segment, a lane keeps its own value.
  const int lane = static_cast<int>(t.linear % 32), seg = lane & ~(width - 1), in_seg = lane - seg;
  int src = lane;
  switch (mode) {
    case Shfl::kIdx: src = seg + (arg & (width - 1)); break;
    case Shfl::kUp: src = in_seg - arg >= 0 ? lane - arg : lane; break;
    case Shfl::kDown: src = in_seg + arg < width ? lane + arg : lane; break;
    case Shfl::kXor: src = ((in_seg ^ arg) < width) ? seg + (in_seg ^ arg) : lane; break;
  }
  const Warp& w = b.warps[t.linear / 32];
  if (!(w.lanes >> src & 1)) src = lane;  // a lane past the end of a partial warp
  const uint64_t r = s.words[src][0] | static_cast<uint64_t>(s.words[src][1]) << 32;
  release(s);
  return r;
}

unsigned vote_ballot(unsigned mask, bool pred) {
  Thread& t = *t_self;
  Block& b = *t.block;
  Blind blind;
  std::unique_lock<std::mutex> lk(b.m);
  const uint32_t in = pred;
  Slot& s = join(Kind::kVote, mask, &in, 1, lk);
  unsigned r = 0;
  for (int l = 0; l < 32; ++l)
    if ((b.warps[t.linear / 32].lanes >> l & 1) && s.words[l][0]) r |= 1u << l;
  release(s);
  return r & mask;
}

uint32_t to_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return (u & 0x007fffffu) ? 0x7fffffffu : u;  // NaN stays NaN, inf inf
  // cvt.rna: to the nearest 10-bit mantissa, ties away from zero; the low 13 bits are zero here
  // (the ISA leaves them unspecified; ember masks them before reading the result as a float).
  return (u + 0x1000u) & 0xffffe000u;
}

// The warp's 16x8x8 product from the PTX ISA's m16n8k8 .tf32 fragment layout, g = lane / 4,
// q = lane % 4:  a = {A(g,q), A(g+8,q), A(g,q+4), A(g+8,q+4)},  b = {B(q,g), B(q+4,g)},
// c = {C(g,2q), C(g,2q+1), C(g+8,2q), C(g+8,2q+1)}. The hardware reads the 19 TF32 bits of each
// input (the rest is ignored); it accumulates in fp32 in an unspecified order: here k = 0..7.
void mma_tf32(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&bb)[2]) {
  Thread& t = *t_self;
  Block& blk = *t.block;
  Blind blind;
  std::unique_lock<std::mutex> lk(blk.m);
  const uint32_t in[6] = {a[0], a[1], a[2], a[3], bb[0], bb[1]};
  Slot& s = join(Kind::kMma, 0xffffffffu, in, 6, lk);
  if (blk.warps[t.linear / 32].lanes != 0xffffffffu) fail(blk, "mma.sync in a partial warp");
  // This lane's four outputs need rows g, g + 8 of A and columns 2q, 2q + 1 of B: A(r, k) is in
  // lane (r % 8) * 4 + k % 4, word (r >= 8) + 2 (k >= 4); B(k, n) in lane n * 4 + k % 4, word 4 + (k >= 4).
  auto f = [](uint32_t u) { return __uint_as_float(u & 0xffffe000u); };
  const int lane = static_cast<int>(t.linear % 32), g = lane / 4, q = lane % 4;
  float A[2][8], B[8][2];
  for (int k = 0; k < 8; ++k) {
    A[0][k] = f(s.words[g * 4 + k % 4][k >= 4 ? 2 : 0]);
    A[1][k] = f(s.words[g * 4 + k % 4][k >= 4 ? 3 : 1]);
    B[k][0] = f(s.words[(2 * q) * 4 + k % 4][k >= 4 ? 5 : 4]);
    B[k][1] = f(s.words[(2 * q + 1) * 4 + k % 4][k >= 4 ? 5 : 4]);
  }
  release(s);
  lk.unlock();
  for (int e = 0; e < 4; ++e) {
    float acc = c[e];
    for (int k = 0; k < 8; ++k) acc += A[e >> 1][k] * B[k][e & 1];
    c[e] = acc;
  }
}

void trap(const char* file, int line) {
  Block& b = *t_self->block;
  std::unique_lock<std::mutex> lk(b.m);
  fail(b, "__trap() at " + std::string(file) + ":" + std::to_string(line) + " in " + where(*t_self));
}

void* static_shared(const void* tag, size_t bytes) {
  Block& b = *t_self->block;
  Blind blind;  // the lookup's lock must not order the threads' shared-memory accesses
  std::lock_guard<std::mutex> lk(b.m);
  auto it = b.statics.find(tag);
  if (it == b.statics.end()) it = b.statics.emplace(tag, std::make_pair(alloc_nan(bytes), bytes)).first;
  return it->second.first;
}

void* dynamic_shared() { return t_self->block->dyn; }

// ---- running a block ---------------------------------------------------------------------------

namespace {

struct ThreadRun {
  Thread* t;
  const std::function<void()>* body;
};

void thread_exit(Thread& t) {
  Block& b = *t.block;
  std::lock_guard<std::mutex> lk(b.m);
  ++b.exited;
  b.warps[t.linear / 32].exited |= 1u << (t.linear % 32);
  ++b.progress;
  b.cv.notify_all();
}

void run_thread(Thread& t, const std::function<void()>& body) {
  t_self = &t;
  try {
    body();
  } catch (Abort&) {
  } catch (std::exception& e) {
    std::lock_guard<std::mutex> lk(t.block->m);
    if (t.block->error.empty()) t.block->error = std::string("exception in ") + where(t) + ": " + e.what();
  }
  thread_exit(t);
  t_self = nullptr;
}

#ifndef EMBER_EMU_OS_THREADS
// Fibers are reused across blocks and launches (the largest block so far).
FiberSet& fiber_pool(size_t n) {
  static std::unique_ptr<FiberSet> pool;
  if (!pool || pool->size() < n) pool = std::make_unique<FiberSet>(n);
  return *pool;
}
Block* g_fiber_block = nullptr;
std::vector<ThreadRun> g_runs;
void fiber_entry(void* arg) {
  g_fiber_block->fibers->started();
  auto* r = static_cast<ThreadRun*>(arg);
  run_thread(*r->t, *r->body);
  g_fiber_block->fibers->yield(true);
}
#endif

std::string describe_waits(Block& b) {
  std::ostringstream s;
  if (b.bar_arrived) s << b.bar_arrived << " thread(s) at __syncthreads " << b.bar_file << ":" << b.bar_line << "; ";
  for (size_t w = 0; w < b.warps.size(); ++w)
    for (auto& sl : b.warps[w].slot)
      if (sl.arrived) s << "warp " << w << ": lanes 0x" << std::hex << sl.arrived << std::dec << " at " << kind_name(sl.kind) << "; ";
  s << b.exited << " thread(s) exited";
  return s.str();
}

}  // namespace

void run_block(Block& b, const std::function<void()>& body) {
  b.threads.resize(b.nthreads);
  b.warps.assign((b.nthreads + 31) / 32, Warp{});
  for (unsigned i = 0; i < b.nthreads; ++i) {
    Thread& t = b.threads[i];
    t.tid = {i % b.bdim.x, (i / b.bdim.x) % b.bdim.y, i / (b.bdim.x * b.bdim.y)};
    t.linear = i;
    t.block = &b;
    b.warps[i / 32].lanes |= 1u << (i % 32);
  }
#ifdef EMBER_EMU_OS_THREADS
  std::vector<std::thread> ts;
  ts.reserve(b.nthreads);
  for (unsigned i = 0; i < b.nthreads; ++i) ts.emplace_back([&b, &body, i] { run_thread(b.threads[i], body); });
  for (auto& t : ts) t.join();
#else
  FiberSet& fs = fiber_pool(b.nthreads);
  b.fibers = &fs;
  g_fiber_block = &b;
  g_runs.assign(b.nthreads, ThreadRun{});
  std::vector<char> done(b.nthreads, 0);
  for (unsigned i = 0; i < b.nthreads; ++i) {
    g_runs[i] = {&b.threads[i], &body};
    fs.reset(i, fiber_entry, &g_runs[i]);
  }
  unsigned live = b.nthreads;
  while (live > 0) {
    const uint64_t before = b.progress;
    for (unsigned i = 0; i < b.nthreads; ++i) {
      if (done[i]) continue;
      t_self = &b.threads[i];  // one OS thread: the scheduler says which emulated thread runs
      fs.resume(i);
      if (b.warps[i / 32].exited >> (i % 32) & 1) done[i] = 1, --live;
    }
    if (live > 0 && b.progress == before && b.error.empty()) {
      std::lock_guard<std::mutex> lk(b.m);
      b.error = "deadlock: no emulated thread can proceed (" + describe_waits(b) + ")";
    }
  }
  g_fiber_block = nullptr;
#endif
}

Block* new_block() { return new Block; }
void delete_block(Block* b) {
  for (auto& kv : b->statics) free_aligned(kv.second.first);
  if (b->dyn) free_aligned(b->dyn);
  delete b;
}
void setup_block(Block& b, uint3 bid, dim3 bdim, dim3 gdim, size_t dyn_bytes, const char* kernel) {
  b.bid = bid, b.bdim = bdim, b.gdim = gdim;
  b.nthreads = bdim.x * bdim.y * bdim.z;
  b.kernel = kernel;
  b.dyn = alloc_nan(dyn_bytes);
}
const std::string& block_error(const Block& b) { return b.error; }

}  // namespace ember::emu
