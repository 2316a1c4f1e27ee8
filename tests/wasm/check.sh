#!/bin/sh
# tests/wasm/check.sh (make test-wasm; in .ci/run) — the WebAssembly build under Node:
#   - the stand-in for cmocka (tests/wasm/cmocka.h) fails what it must: shim_selftest exits 3
#     with three FAILED lines;
#   - test_math, test_ops (every op-table row against its double-precision reference and finite
#     differences, in fp32 and bf16) and test_cpu_conv (the SIMD128 path against naive loops) pass;
#   - no_codecs: image and xz files refused (TG_ERR_UNSUPPORTED, messages naming the function and
#     the build), plain safetensors files still saved and loaded, RGB bytes out of a tensor;
#   - op_results: every op-table row's output and input gradients against the native build's for
#     the same inputs, within the row's cross-device tolerance.
# Ends with "wasm_check: N passed, N failed". BUILD and WASM name the two build directories.
set -eu
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
W=${WASM:-build-wasm}
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "wasm_check: ok: $1"; }
bad() { failed=$((failed + 1)); echo "wasm_check: FAILED: $1"; }
T=$(mktemp -d /tmp/tg-wasm.XXXXXX)
trap 'rm -rf "$T"' EXIT

set +e
node "$W/tests/shim_selftest.js" >"$T/shim.log" 2>&1
rc=$?
set -e
if [ "$rc" -eq 3 ] && [ "$(grep -c '^\[  FAILED  \] [a-z_]*$' "$T/shim.log")" -eq 3 ] &&
   grep -q '^\[       OK \] passes$' "$T/shim.log" && grep -q '^\[  SKIPPED \] skips$' "$T/shim.log"; then
    ok "the cmocka stand-in fails three failing tests (status 3)"
else
    cat "$T/shim.log"; bad "the cmocka stand-in: status $rc, expected 3 with three FAILED lines"
fi
for t in test_math test_ops test_cpu_conv; do
    if node "$W/tests/$t.js" >"$T/$t.log" 2>&1; then
        ok "$t ($(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1 passed/p' "$T/$t.log" | tail -1))"
    else
        cat "$T/$t.log"; bad "$t"
    fi
done
if node "$W/tests/no_codecs.js" "$T" >"$T/no_codecs.log" 2>&1; then
    ok "no_codecs: image and xz files refused, plain files kept"
else
    cat "$T/no_codecs.log"; bad "no_codecs"
fi
grep -q '^\[       OK \] test_simd128$' "$T/test_cpu_conv.log" || bad "test_cpu_conv did not run the SIMD128 path"
if "$B/tests/op_results" write "$T/native.bin" >"$T/native.log" 2>&1 &&
   node "$W/tests/op_results.js" check "$T/native.bin" >"$T/cmp.log" 2>&1; then
    ok "op_results: $(sed -n 's/^compared \([0-9]*\) op cases.*/\1 op cases/p' "$T/cmp.log") equal to the native build's within tolerance"
else
    cat "$T/native.log" "$T/cmp.log"; bad "op_results against the native build"
fi
echo "wasm_check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
