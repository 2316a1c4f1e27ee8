"""torch_steps.py — the step timing PyTorch's twins share in their --bench mode
(bench/fashion_torch.py, bench/unet_torch.py; `fashion --bench` and `unet --bench` time the same
way): every step timed with its batch preparation, after WARM warm-up steps, and the line's tail
bench/compare.sh reads (median, min, max, peak RSS).
"""
import resource
import time

WARM = 3


def time_steps(step, n, warm=WARM):
    """step(k) for k in 0 .. warm + n - 1; the last n in milliseconds, sorted ascending."""
    ms = []
    for k in range(warm + n):
        t = time.perf_counter()
        step(k)
        if k >= warm:
            ms.append(1e3 * (time.perf_counter() - t))
    return sorted(ms)


def summary(ms):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"median {ms[len(ms) // 2]:.2f} ms/step (min {ms[0]:.2f}, max {ms[-1]:.2f}), peak RSS {rss:.0f} MB"
