// Fibers for the emulator (fiber.h).
#include "tests/emulation/fiber.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMBER_EMU_ASAN 1
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace ember::emu {

FiberStack::FiberStack() {
  void* p = mmap(nullptr, kGuard + kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "emu: cannot map a fiber stack\n");
    std::abort();
  }
  base_ = static_cast<char*>(p);
  mprotect(base_, kGuard, PROT_NONE);
}
FiberStack::~FiberStack() { munmap(base_, kGuard + kSize); }

#if defined(__x86_64__)
// ember_emu_switch(void** save_sp, void* load_sp): saves the callee-saved registers, MXCSR and the
// x87 control word on the current stack, stores the stack pointer in *save_sp and resumes the
// context saved at load_sp. A new fiber's stack is laid out so that the switch "returns" into
// ember_emu_start, which calls entry(arg) (r13, r12).
extern "C" void ember_emu_switch(void** save_sp, void* load_sp);
extern "C" void ember_emu_start();
asm(R"(
  .text
  .globl ember_emu_switch
  .type ember_emu_switch,@function
ember_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ember_emu_switch,.-ember_emu_switch
  .globl ember_emu_start
  .type ember_emu_start,@function
ember_emu_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size ember_emu_start,.-ember_emu_start
)");
#endif

struct FiberSet::Impl {
  std::vector<FiberStack*> stacks;
#if defined(__x86_64__)
  std::vector<void*> sp;
  void* sched_sp = nullptr;
#else
  std::vector<ucontext_t> ctx;
  ucontext_t sched;
#endif
  size_t current = 0;
#ifdef EMBER_EMU_ASAN
  void* sched_fake = nullptr;
  std::vector<void*> fake;
  const void* sched_bottom = nullptr;
  size_t sched_size = 0;
#endif
};

FiberSet::FiberSet(size_t n) : impl_(new Impl), n_(n) {
  impl_->stacks.resize(n);
  for (auto& s : impl_->stacks) s = new FiberStack;
#if defined(__x86_64__)
  impl_->sp.resize(n);
#else
  impl_->ctx.resize(n);
#endif
#ifdef EMBER_EMU_ASAN
  impl_->fake.resize(n);
#endif
}

FiberSet::~FiberSet() {
  for (auto* s : impl_->stacks) delete s;
  delete impl_;
}

namespace {
struct Start {
  FiberSet::Entry entry;
  void* arg;
};
}  // namespace

void FiberSet::reset(size_t i, Entry entry, void* arg) {
  FiberStack& s = *impl_->stacks[i];
#ifdef EMBER_EMU_ASAN
  // A fiber abandoned at an error may have left poisoned frames behind.
  __asan_unpoison_memory_region(s.bottom(), s.size());
#endif
#if defined(__x86_64__)
  auto top = reinterpret_cast<uintptr_t>(s.bottom() + s.size()) & ~uintptr_t{15};
  auto* f = reinterpret_cast<uint64_t*>(top - 64);
  f[0] = 0x037f00001f80ull;  // MXCSR default (low half), x87 control word (bytes 4-5)
  f[1] = 0, f[2] = 0;        // r15, r14
  f[3] = reinterpret_cast<uint64_t>(entry);  // r13
  f[4] = reinterpret_cast<uint64_t>(arg);    // r12
  f[5] = 0, f[6] = 0;                        // rbx, rbp
  f[7] = reinterpret_cast<uint64_t>(&ember_emu_start);
  impl_->sp[i] = f;
#else
  ucontext_t& c = impl_->ctx[i];
  getcontext(&c);
  c.uc_stack.ss_sp = s.bottom();
  c.uc_stack.ss_size = s.size();
  c.uc_link = nullptr;
  makecontext(&c, reinterpret_cast<void (*)()>(entry), 1, arg);  // one pointer argument (LP64 ABIs)
#endif
}

void FiberSet::resume(size_t i) {
  impl_->current = i;
#ifdef EMBER_EMU_ASAN
  __sanitizer_start_switch_fiber(&impl_->sched_fake, impl_->stacks[i]->bottom(), impl_->stacks[i]->size());
#endif
#if defined(__x86_64__)
  ember_emu_switch(&impl_->sched_sp, impl_->sp[i]);
#else
  swapcontext(&impl_->sched, &impl_->ctx[i]);
#endif
#ifdef EMBER_EMU_ASAN
  __sanitizer_finish_switch_fiber(impl_->sched_fake, nullptr, nullptr);
#endif
}

void FiberSet::started() {
#ifdef EMBER_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &impl_->sched_bottom, &impl_->sched_size);
#endif
}

void FiberSet::yield(bool finished) {
  const size_t i = impl_->current;
#ifdef EMBER_EMU_ASAN
  __sanitizer_start_switch_fiber(finished ? nullptr : &impl_->fake[i], impl_->sched_bottom, impl_->sched_size);
#endif
#if defined(__x86_64__)
  ember_emu_switch(&impl_->sp[i], impl_->sched_sp);
#else
  swapcontext(&impl_->ctx[i], &impl_->sched);
#endif
#ifdef EMBER_EMU_ASAN
  __sanitizer_finish_switch_fiber(impl_->fake[i], &impl_->sched_bottom, &impl_->sched_size);
#endif
}

}  // namespace ember::emu
