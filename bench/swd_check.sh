#!/bin/sh
# swd_check.sh — `mangagan eval` against the independent numpy implementation (bench/swd.py) on
# the same two image sets: a generator's samples and the held-out faces, and the training faces
# and the held-out faces (the floor). Prints both scores and their ratio. Needs /usr/bin/python3
# with numpy (python3-numpy); not part of `make test`.
#   sh bench/swd_check.sh GENERATOR.safetensors [N]
set -eu
BUILD=${BUILD:-build}
MG=$BUILD/examples/mangagan
DATA=examples/mangagan/data
GEN=${1:?usage: sh bench/swd_check.sh GENERATOR.safetensors [N]}
N=${2:-2048}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$MG" sample --checkpoint "$GEN" --n "$N" --out "$TMP/samples" --seed 5 >/dev/null
"$MG" pack --data "$TMP/samples" --out "$TMP/samples.safetensors" >/dev/null
compare() { # name, set A, set B
    c=$("$MG" eval --images "$2" --data "$3" --n "$N" 2>/dev/null | sed -n 's/.*mean \([0-9.]*\).*/\1/p')
    p=$(/usr/bin/python3 bench/swd.py "$2" "$3" --n "$N" | sed -n 's/.*mean \([0-9.]*\).*/\1/p')
    echo "$1: mangagan eval $c, bench/swd.py $p, ratio $(echo "$c $p" | awk '{printf "%.3f", $1 / $2}')"
}
compare "samples vs held-out" "$TMP/samples.safetensors" "$DATA/heldout.safetensors.xz"
compare "training faces vs held-out" "$DATA/faces.safetensors.xz" "$DATA/heldout.safetensors.xz"
