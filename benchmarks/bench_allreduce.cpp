// All-reduce bandwidth of ember's data-parallel backends (core/dist), as nccl-tests reports it:
//   algbw = bytes / time, busbw = algbw * 2 (n - 1) / n  (what each link carries in a ring, so
//   that figures for different process counts compare with the hardware's bandwidth).
// time = the median of the slowest rank's per-call wall time (sum, in place, float32).
// Run under mpirun: `mpirun -np 2 build/benchmarks/bench_allreduce` (MPI on CPU tensors; NCCL
// on CUDA tensors when built with NCCL and each rank has a GPU). Alone it says there is nothing
// to measure (a group of one reduces nothing). Options: --max-mb M (default 64), --runs R.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "core/context.h"
#include "core/dist/process_group.h"
#include "core/tensor.h"

using namespace ember;

namespace {

void table(dist::ProcessGroup& pg, Device d, int64_t max_bytes, int runs_cap) {
  const int n = pg.size();
  if (pg.is_root()) {
    std::printf("\n## all_reduce (sum, float32) over %d processes, %s tensors, backend %s\n", n, device_name(d),
                d == Device::CUDA && pg.backend_name().find("nccl") != std::string::npos ? "nccl" : "mpi");
    std::printf("%12s %10s %12s %12s %12s\n", "bytes", "runs", "time_us", "algbw_GB/s", "busbw_GB/s");
  }
  for (int64_t bytes = 4; bytes <= max_bytes; bytes *= 4) {
    const int64_t count = bytes / 4;
    Tensor t = Tensor::full(Shape{count}, 1.0f, d);
    const int runs = static_cast<int>(std::max<int64_t>(5, std::min<int64_t>(runs_cap, (256 << 20) / bytes)));
    pg.barrier();
    // The slowest rank's median: gathered through a sum of one slot per rank.
    std::vector<double> per_rank(n, 0.0);
    per_rank[pg.rank()] = bench::cpu_median_us([&] { pg.all_reduce(t); }, runs);
    pg.all_reduce(per_rank.data(), n);
    const double us = *std::max_element(per_rank.begin(), per_rank.end());
    const double algbw = bytes / (us * 1e3);
    const double busbw = algbw * 2.0 * (n - 1) / n;
    if (pg.is_root())
      std::printf("%12lld %10d %12.2f %12.3f %12.3f\n", static_cast<long long>(bytes), runs, us, algbw, busbw);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<dist::ProcessGroup> pg = dist::ProcessGroup::from_environment();
  if (pg->size() == 1) {
    std::printf("bench_allreduce: one process, nothing to reduce; run it as mpirun -np N %s\n", argv[0]);
    return 0;
  }
  const int64_t max_bytes = int64_t(bench::arg_int(argc, argv, "--max-mb", 64)) << 20;
  const int runs = bench::arg_int(argc, argv, "--runs", 50);
  table(*pg, Device::CPU, max_bytes, runs);
  if (cuda_available()) table(*pg, Device::CUDA, max_bytes, runs);
  return 0;
}
