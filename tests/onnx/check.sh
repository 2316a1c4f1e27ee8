#!/bin/sh
# tests/onnx/check.sh (make onnx-check; in .ci/run) — every exported model in real consumers:
#   - the zoo (tests/onnx/zoo.c: every op the exporter writes, BatchNorm statistics random),
#   - mangagan's generator of each recipe (seed, dcgan, modern: trained 2 steps at width 8,
#     exported with `mangagan export`), fashion's classifier (`fashion --export-onnx`, 1 epoch on
#     256 images), cgan's conditional generator (`cgan export`, 3 steps) and the U-Net
#     (`unet --export-onnx`, 2 steps),
# each checked by Debian's python3-onnx (onnx.checker.check_model, full_check: shape inference)
# and run by ONNX Runtime (onnxruntime-node, tests/onnx/run_ort.mjs) on the inputs the library
# ran, outputs within 1e-5 of the largest magnitude, at the exported batch and at batch 1.
# Installs what is missing when it can (root: python3-onnx, nodejs + npm; npm ci --ignore-scripts
# for onnxruntime-node into tests/onnx/node_modules). BUILD names the build directory.
set -eu
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "onnx_check: ok: $1"; }
bad() { failed=$((failed + 1)); echo "onnx_check: FAILED: $1"; }
need=""
/usr/bin/python3 -c 'import onnx' 2>/dev/null || need="$need python3-onnx"
command -v node >/dev/null 2>&1 || need="$need nodejs"
command -v npm >/dev/null 2>&1 || need="$need npm"
if [ -n "$need" ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
    else
        echo "onnx_check: needs$need (sudo apt-get install -y$need)"; echo "onnx_check: 0 passed, 1 failed"; exit 1
    fi
fi
if [ ! -d tests/onnx/node_modules/onnxruntime-node ]; then
    # --ignore-scripts: the package's install script only fetches GPU providers from a host that
    # may be unreachable; the CPU runtime is inside the package
    (cd tests/onnx && npm ci --ignore-scripts --no-audit --no-fund >/dev/null 2>&1) ||
        { echo "onnx_check: npm ci in tests/onnx failed"; echo "onnx_check: 0 passed, 1 failed"; exit 1; }
fi
T=$(mktemp -d /tmp/tg-onnx.XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

"$B/tests/onnx_zoo" "$T" >"$T/zoo.log" 2>&1 || { cat "$T/zoo.log"; bad "onnx_zoo"; }
for r in seed dcgan modern; do
    "$B/examples/mangagan" train --recipe $r --width 8 --steps 2 --batch 8 --device cpu --log-every 100 \
        --sample-every 100 --out "$T/mg-$r" >"$T/mg-$r.log" 2>&1 &&
    "$B/examples/mangagan" export --checkpoint "$T/mg-$r/checkpoint.safetensors" --onnx "$T/mangagan-$r.onnx" \
        --sample "$T/mangagan-$r.sample.safetensors" >>"$T/mg-$r.log" 2>&1 || { cat "$T/mg-$r.log"; bad "mangagan $r"; }
done
if [ -d /usr/share/datasets/fashion-mnist ]; then
    "$B/examples/fashion" --epochs 1 --limit 256 --test-limit 64 --device cpu --export-onnx "$T/fashion.onnx" \
        --onnx-sample "$T/fashion.sample.safetensors" >"$T/fashion.log" 2>&1 || { cat "$T/fashion.log"; bad "fashion"; }
    "$B/examples/cgan" train --steps 3 --batch 8 --sample-every 100 --device cpu --out "$T/cg" >"$T/cgan.log" 2>&1 &&
    "$B/examples/cgan" export --checkpoint "$T/cg/generator.safetensors" --onnx "$T/cgan.onnx" \
        --sample "$T/cgan.sample.safetensors" >>"$T/cgan.log" 2>&1 || { cat "$T/cgan.log"; bad "cgan"; }
    "$B/examples/unet" --steps 2 --batch 4 --width 4 --test-n 8 --device cpu --out "$T/un" --check "$T/un.check" \
        --export-onnx "$T/unet.onnx" >"$T/unet.log" 2>&1 && mv "$T/unet.onnx.sample.safetensors" "$T/unet.sample.safetensors" ||
        { cat "$T/unet.log"; bad "unet"; }
else
    bad "no Fashion-MNIST (/usr/share/datasets/fashion-mnist: apt-get install dataset-fashion-mnist)"
fi

pairs=""
for m in "$T"/*.onnx; do
    n=$(basename "$m" .onnx)
    if /usr/bin/python3 - "$m" >"$T/$n.checker" 2>&1 <<'PY'
import sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
print("opset", m.opset_import[0].version, "ir", m.ir_version, "nodes", len(m.graph.node),
      "inputs", [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]) for i in m.graph.input])
PY
    then ok "$n: onnx.checker (full check) accepts it: $(cat "$T/$n.checker")"
    else cat "$T/$n.checker"; bad "$n: onnx.checker"; fi
    pairs="$pairs $m $T/$n.sample.safetensors"
done
set +e
node tests/onnx/run_ort.mjs $pairs > "$T/ort.log" 2>&1
set -e
cat "$T/ort.log"
set -- $(sed -n 's/^onnx_ort: \([0-9]*\) passed, \([0-9]*\) failed/\1 \2/p' "$T/ort.log")
passed=$((passed + ${1:-0})); failed=$((failed + ${2:-1}))
echo "onnx_check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
