#!/bin/bash
# gpu_profile.sh — where a CUDA training step spends its time: Nsight Compute's kernel durations
# for a `mangagan bench` run of one warm-up and one timed step (init kernels included), summed per
# kernel name. Run on a lent
# GPU after tests/gpu_validate.sh has built the tree:  bash tests/gpu_profile.sh [recipe] [batch]
R=${1:-dcgan}; B=${2:-256}
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/tmp/debs/usr/lib/x86_64-linux-gnu:/tmp/debs/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}
ncu --metrics gpu__time_duration.sum --csv --launch-count 3000 \
    ./build/examples/mangagan bench --device cuda --recipe "$R" --batch "$B" --steps 1 --warmup 1 \
    > "$OUT/ncu-$R-$B.csv" 2>/dev/null
python3 - "$OUT/ncu-$R-$B.csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; rows = rows[1:]
ki, vi = head.index("Kernel Name"), head.index("Metric Value")
tot = collections.Counter(); cnt = collections.Counter()
for r in rows:
    name = r[ki].split("(")[0][:60]
    tot[name] += float(r[vi].replace(",", "")); cnt[name] += 1
all_ns = sum(tot.values())
print(f"{len(rows)} kernel launches, {all_ns/1e6:.2f} ms of kernel time")
for name, ns in tot.most_common(14):
    print(f"{ns/1e6:8.3f} ms {100*ns/all_ns:5.1f}%  x{cnt[name]:<4} {name}")
PY
