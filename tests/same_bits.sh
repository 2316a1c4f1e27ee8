#!/bin/sh
# tests/same_bits.sh — whether a change kept the CPU's training bit for bit: fixed-seed mangagan
# runs (each recipe, 1 and 2 threads, with the features the recipes use: BatchNorm, the fused
# BatchNorm + activation, Winograd and direct convolutions, EMA, DiffAugment, spectral norm,
# Adam with both epsilons) and a fashion epoch on a slice, reduced to the sha256 of each
# generator/model file and of each log without its timing columns.
#
#   sh tests/same_bits.sh > before.txt      (on the old build)
#   sh tests/same_bits.sh > after.txt       (on the new one)
#   diff before.txt after.txt               (no output: the same bits)
#
# BUILD (default build) names the build directory. About two minutes on two cores.
set -eu
cd "$(dirname "$0")/.."
B=${BUILD:-build}
# dense layers and spectral normalisation go through OpenBLAS in fp32, whose kernel (and so its
# rounding) follows OPENBLAS_CORETYPE: compare runs made with the same setting
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
T=$(mktemp -d /tmp/tg_same_bits.XXXXXX)
trap 'rm -rf "$T"' EXIT
run() { # name, threads, args...
    name=$1; th=$2; shift 2
    OMP_NUM_THREADS=$th "$B/examples/mangagan" train --out "$T/$name" --device cpu --seed 7 "$@" >/dev/null 2>&1 ||
        { echo "$name: mangagan failed"; return; }
    printf '%s generator %s\n' "$name" "$(sha256sum < "$T/$name/generator.safetensors" | cut -c1-16)"
    printf '%s log %s\n' "$name" "$(cut -d, -f1,3-8 "$T/$name/log.csv" | sha256sum | cut -c1-16)"
}
run seed-w8-t1 1 --recipe seed --width 8 --batch 8 --steps 6 --log-every 1 --sample-every 100 --checkpoint-every 3
run seed-w8-t2 2 --recipe seed --width 8 --batch 8 --steps 6 --log-every 1 --sample-every 100 --checkpoint-every 3
run dcgan-w16 2 --recipe dcgan --width 16 --batch 16 --steps 4 --log-every 1 --sample-every 100
run modern-w16 2 --recipe modern --width 16 --batch 16 --steps 4 --log-every 1 --sample-every 100 --flip
run modern-sn-w8 1 --recipe modern --width 8 --batch 8 --steps 4 --log-every 1 --sample-every 100 --sn 1
run dcgan-w64 2 --recipe dcgan --width 64 --batch 64 --steps 2 --log-every 1 --sample-every 100
if [ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    OMP_NUM_THREADS=2 "$B/examples/fashion" --epochs 1 --limit 512 --test-limit 256 --batch 64 --seed 3 --device cpu \
        --save "$T/fashion.safetensors" > "$T/fashion.txt" 2>/dev/null || echo "fashion: failed"
    printf 'fashion model %s\n' "$(sha256sum < "$T/fashion.safetensors" | cut -c1-16)"
    printf 'fashion accuracy %s\n' "$(grep -o 'test accuracy [0-9.]*%' "$T/fashion.txt" | tail -n 1)"
fi
