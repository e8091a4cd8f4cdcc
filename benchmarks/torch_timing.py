"""The timing loop of the PyTorch peers: one warm-up call, then the median of `reps` calls, timed
with CUDA events on the GPU (the host clock would time the launches only) and the host clock on the
CPU. Returns milliseconds."""
import statistics
import time

import torch


def median_ms(step, reps, device):
    step()  # warm-up: allocations, lazy initialisation, spectral-norm buffers
    times = []
    for _ in range(reps):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)
