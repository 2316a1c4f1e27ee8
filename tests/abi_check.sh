#!/bin/sh
# tests/abi_check.sh (make abi-check; make abi-baseline writes the baseline) — the ABI promise of
# README.md, "Versions and compatibility", kept by a machine: builds the library as released
# (CPU backend; CUDA, MPI and NCCL change no public symbol or type) with debug information into
# build-abi/, describes its ABI with abidw (libabigail; public types only: those declared in
# include/) and compares it with tests/abi/libtensorgan.so.$SOVERSION.abi, the ABI of the last
# release. Added functions pass; a removed function or variable, or a changed signature or
# public type (a struct's size or members, an enum's values, a function's parameters), fails,
# unless the SONAME was bumped (then the baseline is recorded anew at the release).
#   sh tests/abi_check.sh            compare
#   sh tests/abi_check.sh baseline   write the baseline (at release time)
set -eu
cd "$(dirname "$0")/.."
for tool in abidw abidiff; do
    command -v $tool >/dev/null 2>&1 || {
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends abigail-tools >/dev/null
        else
            echo "abi_check: needs abigail-tools (sudo apt-get install -y abigail-tools)"; echo "abi_check: 0 passed, 1 failed"; exit 1
        fi
    }
done
VERSION=$(sed -n 's/^VERSION *:= *//p' Makefile)
SOVERSION=$(sed -n 's/^SOVERSION *:= *//p' Makefile)
B=build-abi
make -s BUILD=$B CUDA=0 MPI=0 NCCL=0 CFLAGS=-g lib >/dev/null
abidw --no-corpus-path --no-show-locs --headers-dir include --drop-private-types \
    "$B/libtensorgan.so.$VERSION" > "$B/current.abi"
BASE=tests/abi/libtensorgan.so.$SOVERSION.abi
if [ "${1:-}" = baseline ]; then
    mkdir -p tests/abi && cp "$B/current.abi" "$BASE"
    echo "abi_check: baseline $BASE written from libtensorgan $VERSION"; exit 0
fi
if [ ! -f "$BASE" ]; then
    # a new SONAME starts with no baseline: nothing has been promised under it yet
    echo "abi_check: no baseline for libtensorgan.so.$SOVERSION ($BASE): SONAME bumped since the last"
    echo "  release; incompatible changes are allowed until the release records one (make abi-baseline)"
    echo "abi_check: 1 passed, 0 failed"; exit 0
fi
set +e
abidiff --no-added-syms "$BASE" "$B/current.abi" > "$B/abidiff.txt" 2>&1
rc=$?
set -e
if [ $rc -eq 0 ]; then
    added=$(abidiff "$BASE" "$B/current.abi" 2>/dev/null | sed -n 's/.* \([0-9]*\) Added function.*/\1/p')
    echo "abi_check: ok: libtensorgan $VERSION keeps the ABI of $BASE (${added:-0} functions added)"
    echo "abi_check: 1 passed, 0 failed"; exit 0
fi
cat "$B/abidiff.txt"
if [ $((rc & 3)) -ne 0 ]; then
    echo "abi_check: FAILED: abidiff could not compare (status $rc)"
else
    echo "abi_check: FAILED: an incompatible change keeps the SONAME libtensorgan.so.$SOVERSION (abidiff status $rc)."
    echo "  Undo it, or bump SOVERSION in the Makefile (README.md, \"Versions and compatibility\")."
fi
echo "abi_check: 0 passed, 1 failed"; exit 1
