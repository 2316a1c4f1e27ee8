#!/bin/sh
# bench/infer.sh (make bench-infer) — inference: ours against ONNX Runtime on the same model file,
# alternating in one run: mangagan's dcgan generator at width 64 (batch 1 and 64) and fashion's
# classifier (batch 1 and 64), 1 and 2 threads (OMP_NUM_THREADS for ours, intra-op threads for
# ONNX Runtime), ROUNDS rounds (default 3) of REPS runs each; prints each median and, per row,
# the median over rounds and ORT/ours (> 1: ours faster). OpenBLAS (our dense layers) runs with
# OPENBLAS_CORETYPE unset (libtensorgan picks the CPU's kernel); ONNX Runtime uses its own MLAS.
set -eu
cd "$(dirname "$0")/.."
B=${BUILD:-build}
ROUNDS=${ROUNDS:-3}
T=$(mktemp -d /tmp/tg-infer.XXXXXX)
trap 'rm -rf "$T"' EXIT
"$B/bench/infer" export "$T"
echo "infer: $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(date -u +%Y-%m-%d)"
res="$T/results"
for th in 1 2; do
    for mb in "generator 1 200" "generator 64 10" "classifier 1 300" "classifier 64 30"; do
        set -- $mb
        for r in $(seq "$ROUNDS"); do
            o=$(env -u OPENBLAS_CORETYPE OMP_NUM_THREADS=$th "$B/bench/infer" time "$1" "$2" "$3")
            n=$(node bench/infer_ort.mjs "$T/$1.onnx" "$2" "$3" "$th")
            echo "  threads $th round $r: $o | $n"
            echo "$th $1 $2 $(echo "$o" | sed 's/.*median \([0-9.]*\) ms.*/\1/') $(echo "$n" | sed 's/.*median \([0-9.]*\) ms.*/\1/')" >> "$res"
        done
    done
done
echo ""
echo "| threads | model | batch | ours ms | ONNX Runtime ms | ORT / ours |"
echo "|---|---|---|---|---|---|"
awk '{k = $1 " " $2 " " $3; n[k]++; o[k, n[k]] = $4; x[k, n[k]] = $5; if (!(k in seen)) { seen[k] = 1; order[++m] = k } }
     function med(a, k, c,   i, j, t, v) { for (i = 1; i <= c; i++) v[i] = a[k, i];
         for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
         return c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2 }
     END { for (i = 1; i <= m; i++) { k = order[i]; split(k, f, " "); a = med(o, k, n[k]); b = med(x, k, n[k]);
         printf "| %s | %s | %s | %.3f | %.3f | %.2f |\n", f[1], f[2], f[3], a, b, b / a } }' "$res"
