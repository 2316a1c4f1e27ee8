#!/bin/bash
# gpu_validate.sh — everything a lent GPU machine should run, in one go (see docs/gpu-validation.md):
# build with the CUDA backend, run every test suite (test_cuda runs the op table on both devices
# in fp32, in bf16 and with TF32 against the CPU's fp32), run compute-sanitizer (memcheck,
# racecheck) over the CUDA suite, and time the DCGAN step at batch 64 and 256 in fp32, tf32 and
# bf16 (ours, then PyTorch's in fp32 and in bf16 autocast with channels-last).
# Debian packages the machine lacks (cmocka, OpenBLAS, libpng/libjpeg/liblzma headers) come as
# .debs in .debs/ (see docs/gpu-validation.md).
# Logs go to $OUT (or ./gpu-out).
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/validate.log") 2>&1
J=$(nproc)
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
echo "== machine"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nvcc --version | tail -1
echo "== build"
T0=$(date +%s)
make -j"$J" lib DEBIAN_PKGS= >/tmp/tg-build.log 2>&1 || { tail -30 /tmp/tg-build.log; exit 1; }
TESTS=$(ls tests/test_*.c | sed 's|tests/\(.*\)\.c|build/tests/\1|')
make -j"$J" $TESTS DEBIAN_PKGS= >>/tmp/tg-build.log 2>&1 || { tail -30 /tmp/tg-build.log; exit 1; }
make -j"$J" examples DEBIAN_PKGS= >>/tmp/tg-build.log 2>&1 || { tail -30 /tmp/tg-build.log; exit 1; }
echo "build took $(( $(date +%s) - T0 )) s"
echo "== tests"
sh tests/run.sh $TESTS
echo "== compute-sanitizer memcheck"
compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 build/tests/test_cuda >"$OUT/memcheck.log" 2>&1; echo "memcheck exit $?"; tail -4 "$OUT/memcheck.log"
echo "== compute-sanitizer racecheck"
compute-sanitizer --tool racecheck --error-exitcode 9 build/tests/test_cuda >"$OUT/racecheck.log" 2>&1; echo "racecheck exit $?"; tail -4 "$OUT/racecheck.log"
echo "== bench (ours): mangagan bench, fp32 / tf32 / bf16"
for r in dcgan seed; do for b in 64 256; do for p in fp32 tf32 bf16; do
    ./build/examples/mangagan bench --device cuda --recipe $r --batch $b --steps 20 --warmup 3 --precision $p
done; done; done
echo "== bench (PyTorch, same recipes and steps): fp32, then bf16 autocast + channels-last"
for r in dcgan seed; do for b in 64 256; do
    python3 bench/mangagan_torch.py --device cuda --recipe $r --batch $b --steps 20 --warmup 3
    python3 bench/mangagan_torch.py --device cuda --recipe $r --batch $b --steps 20 --warmup 3 --autocast bf16 --channels-last 1
done; done
echo "== the examples a few steps each on the GPU"
./build/examples/mangagan train --device cuda --recipe modern --width 32 --steps 50 --sample-every 50 \
    --checkpoint-every 50 --eval-every 50 --eval-n 256 --out "$OUT/modern-run" --log-every 25; echo "modern exit $?"
./build/examples/fashion --device cuda --epochs 1 --limit 4096 --test-limit 1000; echo "fashion exit $?"
./build/examples/cgan train --device cuda --steps 50 --sample-every 50 --out "$OUT/cgan-run"; echo "cgan exit $?"
./build/examples/unet --device cuda --steps 100 --test-n 200 --out "$OUT/unet-run"; echo "unet exit $?"
echo "== a short bf16 training run on the GPU (finite losses, a checkpoint)"
./build/examples/mangagan train --device cuda --precision bf16 --recipe modern --width 32 --steps 200 \
    --sample-every 100 --checkpoint-every 100 --out "$OUT/bf16-run" --log-every 50; echo "bf16 train exit $?"
