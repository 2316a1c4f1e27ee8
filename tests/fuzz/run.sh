#!/bin/sh
# tests/fuzz/run.sh (make fuzz FUZZ_SECONDS=N) — builds the library with clang, AddressSanitizer,
# UndefinedBehaviorSanitizer and libFuzzer's coverage instrumentation (no OpenMP: one thread,
# see lib/tg_omp.h), links one harness per parser of untrusted input and runs each for
# FUZZ_SECONDS (default 10) on a copy of its seed corpus (tests/fuzz/corpus/<name>/, committed,
# regression inputs included). A crash, leak, timeout or out-of-memory fails the run and leaves
# the input in build-fuzz/<name>/. FUZZ_RUNS=N runs N executions instead of a time limit.
# Prints one line per harness: executions, coverage (edges), and the result.
set -eu
cd "$(dirname "$0")/../.."
SECONDS_EACH=${FUZZ_SECONDS:-10}
OUT=${FUZZ_BUILD:-build-fuzz}
CLANG=${CLANG:-clang}
HARNESSES=${FUZZ_HARNESSES:-state checkpoint dataset png jpeg imagedir api}
command -v "$CLANG" >/dev/null 2>&1 || { echo "fuzz: needs clang (apt-get install clang libclang-rt-14-dev)"; exit 1; }
mkdir -p "$OUT/obj"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CF="-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -Iinclude -Ilib -fsanitize=fuzzer-no-link $SAN -Wno-unknown-pragmas"
objs=""
for src in lib/*.c lib/cpu/*.c; do
    o="$OUT/obj/$(echo "$src" | tr / _).o"
    flags=""
    case "$src" in
        lib/cpu/*_avx512.c) flags="-mavx512f -mavx512vl -mavx512dq -mavx2 -mfma -mbmi2" ;; # as the Makefile
        lib/cpu/*_avx2.c) flags="-mavx2 -mfma" ;;
    esac
    stale=0; for dep in "$src" lib/*.h lib/cpu/cpu.h include/tensorgan.h; do [ "$dep" -nt "$o" ] && stale=1; done
    if [ ! -e "$o" ] || [ $stale = 1 ]; then
        $CLANG $CF $flags -c "$src" -o "$o"
    fi
    objs="$objs $o"
done
LIBS="-lpng -ljpeg -llzma -lm -ldl -lpthread"
failed=0
for h in $HARNESSES; do
    bin="$OUT/fuzz_$h"
    $CLANG $CF -fsanitize=fuzzer tests/fuzz/fuzz_$h.c $objs $LIBS -o "$bin"
    work="$OUT/$h"
    rm -rf "$work"; mkdir -p "$work/corpus"
    [ -d "tests/fuzz/corpus/$h" ] && cp tests/fuzz/corpus/$h/* "$work/corpus/" 2>/dev/null || true
    if [ -n "${FUZZ_RUNS:-}" ]; then limit="-runs=$FUZZ_RUNS"; else limit="-max_total_time=$SECONDS_EACH"; fi
    set +e
    (cd "$work" && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
        "../fuzz_$h" $limit -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -max_len=1048576 \
        -print_final_stats=1 corpus > log.txt 2>&1)
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log.txt" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$work/log.txt" | tail -n 1 | sed 's/cov: //')
    if [ $rc -eq 0 ]; then
        echo "fuzz: $h: ${execs:-?} executions, coverage ${cov:-?} edges, no findings"
    else
        failed=$((failed + 1))
        echo "fuzz: $h: FAILED after ${execs:-?} executions (exit $rc); log $work/log.txt, input(s):"
        ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null || true
        grep -m 5 -E "ERROR|SUMMARY|runtime error" "$work/log.txt" || true
    fi
done
n=$(echo $HARNESSES | wc -w)
echo "fuzz: $((n - failed)) passed, $failed failed"
[ $failed -eq 0 ]
