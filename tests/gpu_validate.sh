#!/bin/bash
# gpu_validate.sh — everything a lent GPU machine should run, in one go (docs/gpu-validation.md):
# builds for the GPU it finds, runs every test suite (test_cuda: the op table on both devices in
# fp32, bf16 and TF32, the accumulate paths, pooling with NaNs, a grid-stride wrap, the device
# allocation-fault hook; test_dist: one CUDA rank under mpirun equal to the plain run, when mpirun
# is there), compute-sanitizer memcheck and racecheck over the CUDA suite, the examples a few
# hundred steps on the GPU, a short bf16 training run, and the step times of ours against
# PyTorch's configurations (bench/mangagan_torch.py: fp32 + cudnn.benchmark, TF32, bf16 autocast
# + channels-last, torch.compile with CUDA graphs).
#
#   OUT=DIR     where validate.log (everything printed) and results.txt (one line per check:
#               PASS / FAIL / SKIP, name, time or reason) go, written as the run goes, so a run
#               cut short still leaves what it did (default gpu-out)
#   QUICK=1     the short form (target: <= 4 minutes from a cold machine): test_cuda, test_dist
#               and test_ops only, memcheck without racecheck, one recipe at batch 64 in fp32
#               and bf16 against PyTorch's fastest fp32 and bf16, the examples 50 steps each
#   LONG=1      also the issue's training targets: 10,000 bf16 steps of the seed recipe (timed)
#               and 10,000 full-width steps of the modern recipe (SWD)
#
# Without a GPU (CI rehearses it so) the script builds the CUDA backend, then records every GPU
# step as SKIP and exits 0: the rehearsal proves the build and the script's flow, not the GPU.
# Debian packages a GPU machine lacks (cmocka, OpenBLAS, libpng/libjpeg/liblzma headers) come as
# .debs in .debs/ (see docs/gpu-validation.md).
set -u
OUT=${OUT:-gpu-out}
QUICK=${QUICK:-0}
LONG=${LONG:-0}
mkdir -p "$OUT"
exec > >(tee "$OUT/validate.log") 2>&1
RES=$OUT/results.txt
: >"$RES"
J=$(nproc)
T_START=$(date +%s)
npass=0; nfail=0; nskip=0
record() { # status, name, detail
    printf '%-4s  %s%s\n' "$1" "$2" "${3:+  ($3)}" >>"$RES"
    echo "== $1: $2${3:+ ($3)}"
    case $1 in PASS) npass=$((npass + 1)) ;; FAIL) nfail=$((nfail + 1)) ;; *) nskip=$((nskip + 1)) ;; esac
}
check() { # name, command...: runs it, records PASS or FAIL with the time or the exit status
    local name=$1 t0 rc
    shift
    echo "== $name"
    t0=$(date +%s)
    "$@"
    rc=$?
    if [ $rc -eq 0 ]; then record PASS "$name" "$(($(date +%s) - t0)) s"; else record FAIL "$name" "exit $rc"; fi
    return 0
}
gpu_check() { # as check, on a GPU only
    if [ "$GPU" = 1 ]; then check "$@"; else record SKIP "$1" "no GPU here"; fi
}

if ls .debs/*.deb >/dev/null 2>&1; then
    for f in .debs/*.deb; do dpkg -x "$f" /tmp/debs; done
    ML=/tmp/debs/usr/lib/x86_64-linux-gnu
    export CPATH=/tmp/debs/usr/include:/tmp/debs/usr/include/x86_64-linux-gnu
    export LIBRARY_PATH=$ML:$ML/openblas-pthread
    export LD_LIBRARY_PATH=$ML:$ML/openblas-pthread:${LD_LIBRARY_PATH:-}
    # the -dev packages' .so links are absolute or point at versions the machine may lack: make
    # -ljpeg/-lpng/-llzma/-lcmocka resolve to the carried runtimes that match the carried headers
    ln -sf libcmocka.so.0 $ML/libcmocka.so
    # a machine with its own libjpeg headers links its own libjpeg: do not shadow the headers
    if [ -e /usr/include/jpeglib.h ] || [ -e /usr/include/x86_64-linux-gnu/jpeglib.h ]; then
        rm -f /tmp/debs/usr/include/jpeglib.h /tmp/debs/usr/include/jmorecfg.h \
              /tmp/debs/usr/include/jerror.h /tmp/debs/usr/include/x86_64-linux-gnu/jconfig.h
    else
        ln -sf libjpeg.so.62 $ML/libjpeg.so
    fi
    ln -sf libpng16.so.16 $ML/libpng16.so
    ln -sf libpng16.so $ML/libpng.so
    [ -e $ML/liblzma.so ] || ln -sf "$(ls /lib/x86_64-linux-gnu/liblzma.so.5* | head -n 1)" $ML/liblzma.so
fi

echo "== machine"
GPU=0
ARCH=()
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    GPU=1
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')
    # build for the GPU found only (one architecture: a third of the default build's time)
    [ -n "$cap" ] && ARCH=("CUDA_ARCH=-gencode arch=compute_$cap,code=sm_$cap")
else
    echo "no GPU here: the build runs, every GPU step is recorded as SKIP"
fi
command -v nvcc >/dev/null 2>&1 && nvcc --version | tail -n 1
git log -1 --format='commit %H (%s)' 2>/dev/null | cut -c1-120
echo "QUICK=$QUICK LONG=$LONG OUT=$OUT"

build() {
    make -j"$J" lib DEBIAN_PKGS= "${ARCH[@]}" >/tmp/tg-build.log 2>&1 &&
        make -j"$J" $TESTS DEBIAN_PKGS= "${ARCH[@]}" >>/tmp/tg-build.log 2>&1 &&
        make -j"$J" examples DEBIAN_PKGS= "${ARCH[@]}" >>/tmp/tg-build.log 2>&1 ||
        { tail -n 30 /tmp/tg-build.log; return 1; }
}
TESTS=$(ls tests/test_*.c | sed 's|tests/\(.*\)\.c|build/tests/\1|')
check "build (library, every suite, the examples)" build
[ -x build/tests/test_cuda ] || { record FAIL "the build left no test_cuda"; exit 1; }

if [ "$QUICK" = 1 ]; then SUITES="build/tests/test_cuda build/tests/test_dist build/tests/test_ops"; else SUITES=$TESTS; fi
# every suite runs on a CPU too; without a GPU CI has run them already
gpu_check "test suites: $(echo $SUITES | sed 's|build/tests/||g')" sh tests/run.sh $SUITES
gpu_check "compute-sanitizer memcheck (leak check) on test_cuda" \
    sh -c "compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 build/tests/test_cuda >'$OUT/memcheck.log' 2>&1; rc=\$?; tail -n 4 '$OUT/memcheck.log'; exit \$rc"
if [ "$QUICK" = 1 ]; then
    record SKIP "compute-sanitizer racecheck on test_cuda" "QUICK=1"
else
    gpu_check "compute-sanitizer racecheck on test_cuda" \
        sh -c "compute-sanitizer --tool racecheck --error-exitcode 9 build/tests/test_cuda >'$OUT/racecheck.log' 2>&1; rc=\$?; tail -n 4 '$OUT/racecheck.log'; exit \$rc"
fi

echo "== step times: ours (mangagan bench), then PyTorch's configurations (bench/mangagan_torch.py)"
if [ "$QUICK" = 1 ]; then RECIPES=dcgan; BATCHES=64; PRECS="fp32 bf16"; else RECIPES="dcgan seed"; BATCHES="64 256"; PRECS="fp32 tf32 bf16"; fi
TORCH_ON=0
python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && TORCH_ON=1
for r in $RECIPES; do for b in $BATCHES; do
    for p in $PRECS; do
        gpu_check "ours: $r, batch $b, $p" ./build/examples/mangagan bench --device cuda --recipe $r --batch $b --steps 20 --warmup 3 --precision $p
    done
    while read -r name opts; do
        [ -n "$name" ] || continue
        if [ "$GPU" = 1 ] && [ "$TORCH_ON" = 0 ]; then record SKIP "PyTorch $name: $r, batch $b" "no PyTorch with CUDA"; continue; fi
        # shellcheck disable=SC2086
        gpu_check "PyTorch $name: $r, batch $b" python3 bench/mangagan_torch.py --device cuda --recipe $r --batch $b --steps 20 --warmup 3 $opts
    done <<EOF
fp32 --cudnn-benchmark 1
$([ "$QUICK" = 1 ] || echo "tf32 --cudnn-benchmark 1 --tf32 1")
bf16 --autocast bf16 --channels-last 1 --cudnn-benchmark 1
$([ "$QUICK" = 1 ] || echo "bf16+compile --autocast bf16 --channels-last 1 --cudnn-benchmark 1 --compile 1")
EOF
done; done

echo "== the examples on the GPU"
S=$([ "$QUICK" = 1 ] && echo 50 || echo 300)
gpu_check "mangagan train --recipe modern --width 32, $S steps" ./build/examples/mangagan train --device cuda --recipe modern \
    --width 32 --steps $S --sample-every $S --checkpoint-every $S --eval-every $S --eval-n 256 --out "$OUT/modern-run" --log-every 25
gpu_check "fashion, 1 epoch of 4096 images" ./build/examples/fashion --device cuda --epochs 1 --limit 4096 --test-limit 1000
gpu_check "cgan train, $S steps" ./build/examples/cgan train --device cuda --steps $S --sample-every $S --out "$OUT/cgan-run"
gpu_check "unet, $((S * 2)) steps" ./build/examples/unet --device cuda --steps $((S * 2)) --test-n 200 --out "$OUT/unet-run"
gpu_check "a bf16 training run (finite losses, a checkpoint)" ./build/examples/mangagan train --device cuda --precision bf16 \
    --recipe modern --width 32 --steps $((S * 2 / 3)) --sample-every 100 --checkpoint-every 100 --out "$OUT/bf16-run" --log-every 50

if [ "$LONG" = 1 ]; then
    gpu_check "seed recipe, 10,000 bf16 steps (target <= 30 s)" ./build/examples/mangagan train --device cuda --precision bf16 \
        --steps 10000 --out "$OUT/seed-10k-bf16"
    gpu_check "modern recipe, 10,000 full-width steps (target SWD <= 20)" ./build/examples/mangagan train --device cuda \
        --recipe modern --steps 10000 --eval-every 2500 --out "$OUT/modern-10k"
fi

echo "== results ($RES)"
cat "$RES"
echo "gpu_validate: $npass passed, $nfail failed, $nskip skipped ($(($(date +%s) - T_START)) s)"
[ "$nfail" -eq 0 ]
