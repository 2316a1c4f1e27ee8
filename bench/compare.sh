#!/bin/sh
# bench/compare.sh (make bench-compare; MODEL=fashion: make bench-classifier) — libtensorgan
# against PyTorch on this CPU, alternating in one run: for each recipe and thread count, ROUNDS rounds of [ours fp32, ours bf16, PyTorch's
# fastest fp32 configuration, PyTorch's fastest bf16 configuration], each a separate process
# timing STEPS steps after WARMUP. Prints every run, then a table of medians over the rounds with
# the ratios and peak RSS. Both sides get the same OPENBLAS_CORETYPE: CORETYPE (default SkylakeX,
# whatever the machine sets system-wide).
#
# PyTorch's configurations (bench/torch_configs.sh finds the fastest; docs/performance.md has
# this machine's exploration): TORCH_CONFIGS, one per line, "precision interpreter options": the
# interpreter is /usr/bin/python3 (Debian 12's python3-torch 1.13) or chroot:DIR (Debian 13's
# python3-torch 2.6 in a debootstrapped root DIR, this tree bind-mounted at the same path; DIR
# from TRIXIE, without which those lines are skipped), the options bench/mangagan_torch.py's.
# The table takes, per recipe and thread count, the fastest fp32 configuration and the fastest of
# any precision (medians over the rounds).
#   RECIPES="seed dcgan" THREADS="1 2" BATCH=64 WIDTH=64 ROUNDS=2 STEPS=3 WARMUP=1 TRIXIE=/srv/trixie
# MODEL=fashion times examples/fashion's classifier step instead (`fashion --bench`, real
# Fashion-MNIST batches of BATCH=128 with host preparation, 3 warm-up steps) against
# bench/fashion_torch.py --bench; RECIPES and WIDTH do not apply, TORCH_CONFIGS take
# fashion_torch.py's options. MODEL=unet: examples/unet's step (`unet --bench`, BATCH=32,
# WIDTH=32) against bench/unet_torch.py --bench.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MODEL=${MODEL:-mangagan}
THREADS=${THREADS:-1 2}
ROUNDS=${ROUNDS:-2}
WARMUP=${WARMUP:-1}
export OPENBLAS_CORETYPE=${CORETYPE:-SkylakeX}
# glibc's allocator kept from returning memory to the kernel, for both sides: PyTorch frees and
# reallocates its large activation buffers every step, and with glibc's defaults each one is a
# fresh mmap whose pages fault in again (on this VM that made PyTorch's fp32 steps 2-5x slower
# and erratic: 734,370 page faults in 23 classifier steps). PyTorch's CPU tuning guide says the
# same (a caching allocator such as jemalloc or tcmalloc); these settings are glibc's own. Our
# programs allocate from an arena and are not affected. MALLOC_DEFAULT=1 leaves glibc as it is.
if [ "${MALLOC_DEFAULT:-0}" != 1 ]; then
  export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=536870912
fi
if [ "$MODEL" = fashion ] || [ "$MODEL" = unet ]; then
  RECIPES=$MODEL
  if [ "$MODEL" = fashion ]; then BATCH=${BATCH:-128}; WIDTH=-; else BATCH=${BATCH:-32}; WIDTH=${WIDTH:-32}; fi
  STEPS=${STEPS:-20}
  TORCH_SCRIPT=bench/${MODEL}_torch.py
  TORCH_CONFIGS=${TORCH_CONFIGS:-"fp32 /usr/bin/python3
fp32 /usr/bin/python3 --channels-last 1
bf16 /usr/bin/python3 --autocast bf16 --channels-last 1
fp32 chroot:TRIXIE --channels-last 1
bf16 chroot:TRIXIE --autocast bf16 --channels-last 1
bf16 chroot:TRIXIE --autocast bf16"}
else
  RECIPES=${RECIPES:-seed dcgan}
  BATCH=${BATCH:-64}
  WIDTH=${WIDTH:-64}
  STEPS=${STEPS:-3}
  TORCH_SCRIPT=bench/mangagan_torch.py
  TORCH_CONFIGS=${TORCH_CONFIGS:-"fp32 /usr/bin/python3 --convt-onednn 1
fp32 /usr/bin/python3 --convt-onednn 1 --channels-last 1
bf16 /usr/bin/python3 --autocast bf16 --convt-onednn 1 --channels-last 1
bf16 chroot:TRIXIE --autocast bf16 --convt-onednn 1 --channels-last 1
bf16 chroot:TRIXIE --autocast bf16 --channels-last 1"}
fi
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "compare: needs Debian's python3-torch (apt-get install python3-torch)"; exit 1; }
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
torch_run() { # interpreter, then TORCH_SCRIPT's options
  py=$1; shift
  case $py in
    chroot:*) chroot "${py#chroot:}" /usr/bin/python3 "$PWD/$TORCH_SCRIPT" "$@" ;;
    *) "$py" "$TORCH_SCRIPT" "$@" ;;
  esac
}
ours_run() { # recipe, precision
  if [ "$MODEL" = fashion ]; then
    "$BUILD/examples/fashion" --bench "$STEPS" --batch "$BATCH" --device cpu --precision "$2"
  elif [ "$MODEL" = unet ]; then
    "$BUILD/examples/unet" --bench "$STEPS" --batch "$BATCH" --width "$WIDTH" --device cpu --precision "$2"
  else
    "$BUILD/examples/mangagan" bench --recipe "$1" --device cpu --batch "$BATCH" --width "$WIDTH" --steps "$STEPS" \
        --warmup "$WARMUP" --precision "$2"
  fi
}
torch_args() { # recipe: the options every PyTorch run of it takes
  if [ "$MODEL" = fashion ]; then echo "--batch $BATCH --bench $STEPS"
  elif [ "$MODEL" = unet ]; then echo "--batch $BATCH --width $WIDTH --bench $STEPS"
  else echo "--recipe $1 --batch $BATCH --width $WIDTH --steps $STEPS --warmup $WARMUP"; fi
}
version() {
  case $1 in
    chroot:*) chroot "${1#chroot:}" /usr/bin/python3 -c 'import torch; print(torch.__version__)' ;;
    *) "$1" -c 'import torch; print(torch.__version__)' ;;
  esac
}
MALLOC_SAY=defaults; [ -n "${MALLOC_MMAP_THRESHOLD_:-}" ] && MALLOC_SAY="kept (MALLOC_MMAP_THRESHOLD_=$MALLOC_MMAP_THRESHOLD_ MALLOC_TRIM_THRESHOLD_=$MALLOC_TRIM_THRESHOLD_ MALLOC_TOP_PAD_=$MALLOC_TOP_PAD_)"
echo "compare: $MODEL, batch $BATCH, width $WIDTH, $ROUNDS rounds of $STEPS steps after warm-up, OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE, glibc malloc $MALLOC_SAY"
echo "compare: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
CONFIGS=$(mktemp)
trap 'rm -f "$OUT" "$CONFIGS"' EXIT
echo "$TORCH_CONFIGS" | while read -r prec py args; do
  [ -n "$prec" ] || continue
  case $py in chroot:TRIXIE) [ -n "${TRIXIE:-}" ] && [ -x "$TRIXIE/usr/bin/python3" ] || continue; py="chroot:$TRIXIE" ;; esac
  echo "$prec $py $args" >> "$CONFIGS"
done
n=0
while read -r prec py args; do
  n=$((n + 1))
  echo "compare: PyTorch configuration $n: torch $(version "$py") $prec, $args"
done < "$CONFIGS"
field() { echo "$1" | sed -n "s/.*$2 \([0-9.]*\) .*/\1/p"; }
for r in $RECIPES; do
  for t in $THREADS; do
    for round in $(seq 1 "$ROUNDS"); do
      for p in fp32 bf16; do
        o=$(OMP_NUM_THREADS=$t ours_run "$r" $p 2>/dev/null)
        ms=$(field "$o" median); rss=$(field "$o" "peak RSS")
        echo "$r $t ours-$p ours $ms $rss" >> "$OUT"; echo "  $r, $t thread(s), round $round: ours $p $ms ms ($rss MB)"
      done
      n=0
      while read -r prec py args; do
        n=$((n + 1))
        # shellcheck disable=SC2086
        o=$(OMP_NUM_THREADS=$t torch_run "$py" $(torch_args "$r") --threads "$t" $args 2>/dev/null < /dev/null || true)
        ms=$(field "$o" median); rss=$(field "$o" "peak RSS")
        echo "$r $t torch-$prec config$n ${ms:-nan} ${rss:-nan}" >> "$OUT"
        echo "  $r, $t thread(s), round $round: PyTorch configuration $n ($prec) ${ms:-failed} ms (${rss:-?} MB)"
      done < "$CONFIGS"
    done
  done
done
/usr/bin/python3 - "$OUT" <<'PYEOF'
import math, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def med(r, t, who, cfg, col):
    v = [float(x[col]) for x in rows if x[:4] == [r, t, who, cfg] and x[col] != "nan"]
    return statistics.median(v) if v else math.inf
def best(r, t, whos):  # (median ms, configuration, its peak RSS) of the fastest configuration
    cands = {(x[2], x[3]) for x in rows if x[0] == r and x[1] == t and x[2] in whos}
    return min(((med(r, t, w, c, 4), c, med(r, t, w, c, 5)) for w, c in cands), default=(math.inf, "-", math.inf))
print()
print("| recipe, threads | ours fp32 ms | ours bf16 ms | fastest PyTorch fp32 ms (configuration) | fastest PyTorch of any precision ms (configuration) "
      "| ours bf16 / fp32 speed-up | fastest PyTorch / ours bf16 | fastest PyTorch fp32 / ours fp32 | peak RSS ours fp32 / bf16 / that PyTorch MB |")
print("|---|---|---|---|---|---|---|---|---|")
for r, t in dict.fromkeys((x[0], x[1]) for x in rows):
    of, ob = med(r, t, "ours-fp32", "ours", 4), med(r, t, "ours-bf16", "ours", 4)
    tf, cf, _ = best(r, t, {"torch-fp32"})
    ta, ca, ra = best(r, t, {"torch-fp32", "torch-bf16"})
    rf, rb = med(r, t, "ours-fp32", "ours", 5), med(r, t, "ours-bf16", "ours", 5)
    print(f"| {r}, {t} | {of:.0f} | {ob:.0f} | {tf:.0f} ({cf}) | {ta:.0f} ({ca}) | {of / ob:.2f} | {ta / ob:.2f} | "
          f"{tf / of:.2f} | {rf:.0f} / {rb:.0f} / {ra:.0f} |")
PYEOF
