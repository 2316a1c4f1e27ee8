#!/bin/sh
# bench/dist_scaling.sh (make bench-dist) — data-parallel training on this machine: for each
# recipe, ROUNDS rounds alternating [1 rank x 2 threads, 2 ranks x 1 thread] of
# `mangagan train` for STEPS steps (batch BATCH in all, width WIDTH); the step time is the median
# of the per-step times in log.csv after the first 2 steps. Then what averaging the gradients
# costs alone (bench/dist_allreduce.c on 2 ranks, each recipe's bytes per step).
# Both configurations get the same OPENBLAS_CORETYPE (CORETYPE, default SkylakeX).
#   RECIPES="seed dcgan" BATCH=64 WIDTH=64 STEPS=12 ROUNDS=2 CORETYPE=SkylakeX
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RECIPES=${RECIPES:-seed dcgan}
BATCH=${BATCH:-64}
WIDTH=${WIDTH:-64}
STEPS=${STEPS:-12}
ROUNDS=${ROUNDS:-2}
export OPENBLAS_CORETYPE=${CORETYPE:-SkylakeX}
# as root (CI, containers); Open MPI's single-copy shared memory needs ptrace, which containers
# often forbid, and copy-in/copy-out was faster here anyway
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
command -v mpirun >/dev/null || { echo "bench-dist: needs mpirun (Debian: openmpi-bin)"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
M="$BUILD/examples/mangagan"
DATA=examples/mangagan/data/faces.safetensors.xz
echo "bench-dist: batch $BATCH, width $WIDTH, $STEPS steps per run, $ROUNDS rounds, OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE"
echo "bench-dist: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(mpirun --version | head -n 1)"
# median seconds per step from a log.csv (column 2 is the running total), skipping 2 steps
step_ms() {
    awk -F, 'NR > 1 { if (NR > 3) print 1000 * ($2 - prev); prev = $2 }' "$1/log.csv" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
args="--data $DATA --steps $STEPS --batch $BATCH --width $WIDTH --device cpu --sample-every 100000 --checkpoint-every 100000 --log-every 100000"
for r in $RECIPES; do
    for round in $(seq 1 "$ROUNDS"); do
        rm -rf "$TMP/a" "$TMP/b"
        OMP_NUM_THREADS=2 "$M" train --recipe "$r" --out "$TMP/a" $args > "$TMP/a.log" 2>&1
        OMP_NUM_THREADS=1 mpirun -np 2 --bind-to core "$M" train --recipe "$r" --out "$TMP/b" $args > "$TMP/b.log" 2>&1
        a=$(step_ms "$TMP/a"); b=$(step_ms "$TMP/b")
        echo "run: $r round $round: 1 rank x 2 threads $a ms/step, 2 ranks x 1 thread $b ms/step"
        echo "$r $a $b" >> "$TMP/runs"
        grep -h "gradients averaged" "$TMP/b.log" | sed 's/^mangagan: /  /' | head -n 1
    done
done
echo
echo "| recipe | 1 rank x 2 threads (ms/step) | 2 ranks x 1 thread (ms/step) | speed-up of 2 ranks |"
echo "|---|---|---|---|"
for r in $RECIPES; do
    awk -v r="$r" '$1 == r { a[++n] = $2; b[n] = $3 } END {
        sa = ""; sb = ""; for (i = 1; i <= n; i++) { sa = sa (i > 1 ? ", " : "") a[i]; sb = sb (i > 1 ? ", " : "") b[i] }
        printf "| %s | %s | %s |", r, sa, sb
        for (i = 1; i <= n; i++) printf "%s%.2f", (i > 1 ? ", " : " "), a[i] / b[i]
        printf " |\n" }' "$TMP/runs"
done
echo
cc -O2 -Wall -o "$TMP/dist_allreduce" bench/dist_allreduce.c -Iinclude "$BUILD/libtensorgan.so" -Wl,-rpath,"$(pwd)/$BUILD"
for mb in 25.4 36.6; do OMP_NUM_THREADS=1 mpirun -np 2 --bind-to core "$TMP/dist_allreduce" "$mb" 20; done
