#!/bin/sh
# bench/compare.sh (make bench-compare) — libtensorgan against PyTorch on this CPU, alternating
# in one run: for each recipe and thread count, ROUNDS rounds of [ours, PyTorch defaults,
# PyTorch with every conv through oneDNN (--convt-onednn 1)], each a separate process timing
# STEPS steps after WARMUP. Prints every run, then a table of medians over the rounds, the ratio
# (faster PyTorch configuration / ours) and peak RSS. Both sides get the same OPENBLAS_CORETYPE:
# CORETYPE (default SkylakeX, whatever the machine sets system-wide); PyTorch is Debian's
# python3-torch (/usr/bin/python3).
#   RECIPES="seed dcgan" THREADS="1 2" BATCH=64 WIDTH=64 ROUNDS=2 STEPS=3 WARMUP=1 CORETYPE=SkylakeX
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RECIPES=${RECIPES:-seed dcgan}
THREADS=${THREADS:-1 2}
BATCH=${BATCH:-64}
WIDTH=${WIDTH:-64}
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-3}
WARMUP=${WARMUP:-1}
export OPENBLAS_CORETYPE=${CORETYPE:-SkylakeX}
PY=/usr/bin/python3
$PY -c 'import torch' 2>/dev/null || { echo "compare: needs Debian's python3-torch (apt-get install python3-torch)"; exit 1; }
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
echo "compare: batch $BATCH, width $WIDTH, $ROUNDS rounds of $STEPS steps after $WARMUP warm-up, OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE"
echo "compare: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $($PY -c 'import torch; print("torch", torch.__version__)')"
for r in $RECIPES; do
  for t in $THREADS; do
    for round in $(seq 1 "$ROUNDS"); do
      o=$(OMP_NUM_THREADS=$t "$BUILD/examples/mangagan" bench --recipe "$r" --device cpu --batch "$BATCH" \
            --width "$WIDTH" --steps "$STEPS" --warmup "$WARMUP" 2>/dev/null)
      ms=$(echo "$o" | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p'); rss=$(echo "$o" | sed -n 's/.*peak RSS \([0-9]*\) MB.*/\1/p')
      echo "$r $t ours $ms $rss" >> "$OUT"; echo "  $r, $t thread(s), round $round: ours $ms ms ($rss MB)"
      for cfg in 0 1; do
        o=$(OMP_NUM_THREADS=$t $PY bench/mangagan_torch.py --recipe "$r" --batch "$BATCH" --width "$WIDTH" \
              --threads "$t" --steps "$STEPS" --warmup "$WARMUP" --convt-onednn $cfg 2>/dev/null)
        ms=$(echo "$o" | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p'); rss=$(echo "$o" | sed -n 's/.*peak RSS \([0-9]*\) MB.*/\1/p')
        name=$([ $cfg = 0 ] && echo torch-default || echo torch-onednn)
        echo "$r $t $name $ms $rss" >> "$OUT"; echo "  $r, $t thread(s), round $round: $name $ms ms ($rss MB)"
      done
    done
  done
done
$PY - "$OUT" <<'PYEOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def med(r, t, who, col):
    v = [float(x[col]) for x in rows if x[0] == r and x[1] == t and x[2] == who]
    return statistics.median(v) if v else float("nan")
print()
print("| recipe, threads | libtensorgan ms | PyTorch defaults ms | PyTorch oneDNN convT ms | best PyTorch / ours | peak RSS ours / PyTorch MB |")
print("|---|---|---|---|---|---|")
for r, t in dict.fromkeys((x[0], x[1]) for x in rows):
    o, d, n = med(r, t, "ours", 3), med(r, t, "torch-default", 3), med(r, t, "torch-onednn", 3)
    ro, rp = med(r, t, "ours", 4), min(med(r, t, "torch-default", 4), med(r, t, "torch-onednn", 4))
    print(f"| {r}, {t} | {o:.0f} | {d:.0f} | {n:.0f} | {min(d, n) / o:.2f} | {ro:.0f} / {rp:.0f} |")
PYEOF
