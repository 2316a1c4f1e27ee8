#!/bin/sh
# bench/compare.sh (make bench-compare) — libtensorgan against PyTorch on this CPU, alternating
# in one run: for each recipe and thread count, ROUNDS rounds of [ours fp32, ours bf16, PyTorch's
# fastest fp32 configuration, PyTorch's fastest bf16 configuration], each a separate process
# timing STEPS steps after WARMUP. Prints every run, then a table of medians over the rounds with
# the ratios and peak RSS. Both sides get the same OPENBLAS_CORETYPE: CORETYPE (default SkylakeX,
# whatever the machine sets system-wide).
#
# PyTorch's configurations (bench/torch_configs.sh finds the fastest): PY_FP32/PY_BF16 name the
# interpreter ("/usr/bin/python3": Debian 12's python3-torch 1.13; "chroot:DIR": Debian 13's
# python3-torch 2.6 in a debootstrapped root DIR with this tree bind-mounted at the same path) and
# ARGS_FP32/ARGS_BF16 its bench/mangagan_torch.py options. The defaults are the fastest found on
# this project's 2-core Zen 5 (docs/performance.md); without TRIXIE, 1.13 stands in.
#   RECIPES="seed dcgan" THREADS="1 2" BATCH=64 WIDTH=64 ROUNDS=2 STEPS=3 WARMUP=1 TRIXIE=/srv/trixie
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
if [ -n "${TRIXIE:-}" ] && [ -x "$TRIXIE/usr/bin/python3" ]; then T26="chroot:$TRIXIE"; else T26=/usr/bin/python3; fi
PY_FP32=${PY_FP32:-/usr/bin/python3}
ARGS_FP32=${ARGS_FP32:---convt-onednn 1}
PY_BF16=${PY_BF16:-$T26}
ARGS_BF16=${ARGS_BF16:---autocast bf16 --convt-onednn 1}
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "compare: needs Debian's python3-torch (apt-get install python3-torch)"; exit 1; }
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
torch_run() { # interpreter, then mangagan_torch.py's options
  py=$1; shift
  case $py in
    chroot:*) chroot "${py#chroot:}" /usr/bin/python3 "$PWD/bench/mangagan_torch.py" "$@" ;;
    *) "$py" bench/mangagan_torch.py "$@" ;;
  esac
}
version() {
  case $1 in
    chroot:*) chroot "${1#chroot:}" /usr/bin/python3 -c 'import torch; print(torch.__version__)' ;;
    *) "$1" -c 'import torch; print(torch.__version__)' ;;
  esac
}
echo "compare: batch $BATCH, width $WIDTH, $ROUNDS rounds of $STEPS steps after $WARMUP warm-up, OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE"
echo "compare: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "compare: PyTorch fp32: torch $(version "$PY_FP32") $ARGS_FP32; PyTorch bf16: torch $(version "$PY_BF16") $ARGS_BF16"
field() { echo "$1" | sed -n "s/.*$2 \([0-9.]*\) .*/\1/p"; }
for r in $RECIPES; do
  for t in $THREADS; do
    for round in $(seq 1 "$ROUNDS"); do
      for p in fp32 bf16; do
        o=$(OMP_NUM_THREADS=$t "$BUILD/examples/mangagan" bench --recipe "$r" --device cpu --batch "$BATCH" \
              --width "$WIDTH" --steps "$STEPS" --warmup "$WARMUP" --precision $p 2>/dev/null)
        ms=$(field "$o" median); rss=$(field "$o" "peak RSS")
        echo "$r $t ours-$p $ms $rss" >> "$OUT"; echo "  $r, $t thread(s), round $round: ours $p $ms ms ($rss MB)"
      done
      for p in fp32 bf16; do
        if [ $p = fp32 ]; then py=$PY_FP32; args=$ARGS_FP32; else py=$PY_BF16; args=$ARGS_BF16; fi
        # shellcheck disable=SC2086
        o=$(OMP_NUM_THREADS=$t torch_run "$py" --recipe "$r" --batch "$BATCH" --width "$WIDTH" --threads "$t" \
              --steps "$STEPS" --warmup "$WARMUP" $args 2>/dev/null)
        ms=$(field "$o" median); rss=$(field "$o" "peak RSS")
        echo "$r $t torch-$p $ms $rss" >> "$OUT"; echo "  $r, $t thread(s), round $round: PyTorch $p $ms ms ($rss MB)"
      done
    done
  done
done
/usr/bin/python3 - "$OUT" <<'PYEOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def med(r, t, who, col):
    v = [float(x[col]) for x in rows if x[0] == r and x[1] == t and x[2] == who and len(x) > col]
    return statistics.median(v) if v else float("nan")
print()
print("| recipe, threads | ours fp32 ms | ours bf16 ms | PyTorch fp32 ms | PyTorch bf16 ms | ours bf16 / fp32 speed-up "
      "| fastest PyTorch / ours bf16 | PyTorch fp32 / ours fp32 | peak RSS ours fp32 / bf16 / PyTorch bf16 MB |")
print("|---|---|---|---|---|---|---|---|---|")
for r, t in dict.fromkeys((x[0], x[1]) for x in rows):
    of, ob, tf, tb = (med(r, t, w, 3) for w in ("ours-fp32", "ours-bf16", "torch-fp32", "torch-bf16"))
    rf, rb, rt = (med(r, t, w, 4) for w in ("ours-fp32", "ours-bf16", "torch-bf16"))
    print(f"| {r}, {t} | {of:.0f} | {ob:.0f} | {tf:.0f} | {tb:.0f} | {of / ob:.2f} | {min(tf, tb) / ob:.2f} | "
          f"{tf / of:.2f} | {rf:.0f} / {rb:.0f} / {rt:.0f} |")
PYEOF
