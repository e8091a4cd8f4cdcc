// Emulated launches (cuda_runtime.h's run_launch): the launch-resource checks against the target
// GPU, then the blocks one after another (emu.cpp).
//
// The checks are those the runtime makes when a kernel is launched: threads per block (1024,
// and the kernel's __launch_bounds__), grid dimensions, static + dynamic shared memory (48 KB
// unless raised with cudaFuncSetAttribute, at most the target's opt-in limit), and registers:
// each warp gets its per-thread register count x 32, rounded up to 256, and a block's warps
// must fit the SM's 65,536. Registers, static shared memory and launch bounds come from the real
// build: tests/emulation/kernel_resources.sh reads them from the CUDA objects (cuobjdump) into the
// table named by EMBER_EMU_RESOURCES; a kernel missing from it is an error.
#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "tests/emulation/emu_internal.h"
#include "tests/emulation/target.h"

namespace ember::emu {

namespace {

// ---- kernel names: the function's symbol, read from the executable's symbol table --------------
// A kernel is known by its address; its mangled name is the key of the resource table (host and
// nvcc mangle alike, except for the name of an anonymous namespace, which the table normalises).
uintptr_t g_load_bias = 0;
int find_bias(dl_phdr_info* info, size_t, void*) {
  g_load_bias = info->dlpi_addr;  // the first object is the executable
  return 1;
}

const std::unordered_map<uintptr_t, std::string>& symbols() {
  static const std::unordered_map<uintptr_t, std::string> table = [] {
    std::unordered_map<uintptr_t, std::string> t;
    dl_iterate_phdr(find_bias, nullptr);
    const int fd = open("/proc/self/exe", O_RDONLY);
    struct stat st {};
    if (fd < 0 || fstat(fd, &st) != 0) return t;
    void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return t;
    const auto* base = static_cast<const char*>(map);
    const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
    const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; ++i) {
      if (sh[i].sh_type != SHT_SYMTAB) continue;
      const auto* sym = reinterpret_cast<const Elf64_Sym*>(base + sh[i].sh_offset);
      const char* str = base + sh[sh[i].sh_link].sh_offset;
      for (size_t k = 0; k < sh[i].sh_size / sizeof(Elf64_Sym); ++k)
        if (ELF64_ST_TYPE(sym[k].st_info) == STT_FUNC && sym[k].st_value)
          t.emplace(g_load_bias + sym[k].st_value, str + sym[k].st_name);
    }
    munmap(map, static_cast<size_t>(st.st_size));
    return t;
  }();
  return table;
}

std::string demangle(const std::string& m) {
  int status = 0;
  char* d = abi::__cxa_demangle(m.c_str(), nullptr, nullptr, &status);
  std::string r = status == 0 && d ? d : m;
  std::free(d);
  return r;
}

struct KernelInfo {
  std::string mangled, pretty;
  int regs = -1, static_smem = 0, max_threads = 1024;  // max_threads: __launch_bounds__
  int max_dyn_smem = 0;  // cudaFuncSetAttribute's MaxDynamicSharedMemorySize; 0: not raised
};

// ---- the resource table ---------------------------------------------------------------------------
// Lines "sm_90 <mangled name> <registers> <static shared bytes> <max threads or 0>".
struct Resources {
  int regs, smem, maxntid;
};
const std::unordered_map<std::string, Resources>& resource_table() {
  static const std::unordered_map<std::string, Resources> table = [] {
    std::unordered_map<std::string, Resources> t;
    const char* path = std::getenv("EMBER_EMU_RESOURCES");
#ifdef EMBER_EMU_RESOURCE_TABLE
    if (!path) path = EMBER_EMU_RESOURCE_TABLE;
#endif
    if (!path) throw std::runtime_error("emu: no resource table (set EMBER_EMU_RESOURCES)");
    std::ifstream in(path);
    if (!in) throw std::runtime_error(std::string("emu: cannot read the resource table ") + path);
    const std::string arch = target().arch;
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream s(line);
      std::string a, name;
      Resources r{};
      if (!(s >> a >> name >> r.regs >> r.smem >> r.maxntid) || a != arch) continue;
      t[name] = r;
    }
    if (t.empty()) throw std::runtime_error(std::string("emu: the resource table ") + path + " has no " + arch + " entries");
    return t;
  }();
  return table;
}

std::mutex g_mu;
std::map<const void*, KernelInfo> g_kernels;

KernelInfo& kernel_info(const void* fn) {
  std::lock_guard<std::mutex> lk(g_mu);
  auto it = g_kernels.find(fn);
  if (it != g_kernels.end()) return it->second;
  KernelInfo k;
  auto s = symbols().find(reinterpret_cast<uintptr_t>(fn));
  if (s == symbols().end())
    throw std::runtime_error("emu: no symbol for the kernel at " + std::to_string(reinterpret_cast<uintptr_t>(fn)) +
                             " (is the executable stripped?)");
  k.mangled = s->second;
  k.pretty = demangle(k.mangled);
  auto r = resource_table().find(k.mangled);
  if (r == resource_table().end())
    throw std::runtime_error("emu: kernel " + k.pretty + " (" + k.mangled + ") is not in the " + target().arch +
                             " resource table: regenerate it (tests/emulation/kernel_resources.sh)");
  k.regs = r->second.regs;
  k.static_smem = r->second.smem;
  if (r->second.maxntid > 0) k.max_threads = r->second.maxntid;
  return g_kernels.emplace(fn, k).first->second;
}

std::string str(dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

// What the runtime would refuse, or "" (and the error code it would give).
std::string refuse(const KernelInfo& k, dim3 grid, dim3 block, size_t dyn, cudaError_t& code) {
  const Target& tg = target();
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  std::ostringstream s;
  code = cudaErrorInvalidConfiguration;
  if (threads == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0)
    return s << "empty launch: grid " << str(grid) << ", block " << str(block), s.str();
  if (threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
    return s << "block " << str(block) << " exceeds 1024 threads (or 1024 x 1024 x 64)", s.str();
  if (grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
    return s << "grid " << str(grid) << " exceeds (2^31 - 1, 65535, 65535)", s.str();
  // Without the attribute a block may have 48 KB in all; with it, `max_dyn_smem` dynamic bytes.
  const bool raised = k.max_dyn_smem > 0;
  const uint64_t dyn_limit = raised ? static_cast<uint64_t>(k.max_dyn_smem) : 48 * 1024 - static_cast<uint64_t>(k.static_smem);
  if (dyn > dyn_limit)
    return s << k.static_smem << " B static + " << dyn << " B dynamic shared memory exceed the kernel's limit of "
             << dyn_limit << " B dynamic ("
             << (raised ? "set by cudaFuncSetAttribute" : "48 KB in all without cudaFuncSetAttribute") << "; "
             << tg.smem_optin << " B at most on " << tg.arch << ")",
           s.str();
  code = cudaErrorLaunchOutOfResources;
  if (threads > static_cast<uint64_t>(k.max_threads))
    return s << threads << " threads exceed the kernel's __launch_bounds__ of " << k.max_threads, s.str();
  const uint64_t warps = (threads + 31) / 32;
  const uint64_t per_warp = (static_cast<uint64_t>(k.regs) * 32 + 255) / 256 * 256;
  if (per_warp * warps > 65536)
    return s << k.regs << " registers x " << threads << " threads (" << per_warp * warps
             << " allocated in warps of 256) exceed the 65536 registers of a block",
           s.str();
  code = cudaSuccess;
  return "";
}

// EMBER_EMU_COVERAGE=<file>: the mangled names of the kernels that ran are appended to it at exit
// (how "every kernel runs under emulation" is checked: compare with the resource table).
std::set<std::string> g_ran;
uint64_t g_launches = 0;
void write_coverage() {
  const char* path = std::getenv("EMBER_EMU_COVERAGE");
  if (!path) return;
  std::ofstream out(path, std::ios::app);
  for (const auto& k : g_ran) out << k << "\n";
}

thread_local cudaError_t t_last = cudaSuccess;
thread_local std::string t_detail;

}  // namespace

void set_last_error(cudaError_t e, const std::string& detail) {
  t_last = e;
  t_detail = detail;
}
cudaError_t take_last_error() {
  const cudaError_t e = t_last;
  t_last = cudaSuccess;
  return e;
}
cudaError_t peek_last_error() { return t_last; }
const std::string& last_error_detail() { return t_detail; }

void set_kernel_resources(const void* fn, int regs, int static_smem, int max_threads) {
  std::lock_guard<std::mutex> lk(g_mu);
  KernelInfo k;
  auto s = symbols().find(reinterpret_cast<uintptr_t>(fn));
  k.mangled = s == symbols().end() ? "?" : s->second;
  k.pretty = demangle(k.mangled);
  k.regs = regs, k.static_smem = static_smem, k.max_threads = max_threads;
  g_kernels[fn] = k;
}

cudaError_t set_func_attribute(const void* fn, cudaFuncAttribute attr, int value) {
  KernelInfo& k = kernel_info(fn);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value + k.static_smem > target().smem_optin) {
    set_last_error(cudaErrorInvalidValue, "cudaFuncSetAttribute(" + k.pretty + ", " + std::to_string(value) +
                                              " B): more than the " + std::to_string(target().smem_optin) + " B of " +
                                              target().arch);
    return cudaErrorInvalidValue;
  }
  k.max_dyn_smem = value;
  return cudaSuccess;
}

uint64_t launches() {
  std::lock_guard<std::mutex> lk(g_mu);
  return g_launches;
}

void run_launch(const void* fn, dim3 grid, dim3 block, size_t smem, cudaStream_t, const std::function<void()>& body) {
  const KernelInfo& k = kernel_info(fn);
  cudaError_t code = cudaSuccess;
  const std::string why = refuse(k, grid, block, smem, code);
  if (!why.empty()) {
    const std::string msg = "launch of " + k.pretty + " <<<" + str(grid) + ", " + str(block) + ", " +
                            std::to_string(smem) + ">>> refused on " + target().arch + ": " + why;
    std::fprintf(stderr, "emu: %s\n", msg.c_str());
    set_last_error(code, msg);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(g_mu);
    static const bool registered = std::atexit(write_coverage) == 0;
    (void)registered;
    g_ran.insert(k.mangled);
    ++g_launches;
  }
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        Block* b = new_block();
        setup_block(*b, uint3{x, y, z}, block, grid, smem, k.pretty.c_str());
        run_block(*b, body);
        const std::string err = block_error(*b);
        delete_block(b);
        if (!err.empty())
          throw std::runtime_error("emulated kernel " + k.pretty + " <<<" + str(grid) + ", " + str(block) + ", " +
                                   std::to_string(smem) + ">>> failed: " + err);
      }
}

}  // namespace ember::emu
