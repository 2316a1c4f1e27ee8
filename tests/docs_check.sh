#!/bin/sh
# tests/docs_check.sh (make docs-check; in .ci/run) — the documentation that is generated stays
# in step with what it documents:
#   1. the committed man pages (man/*.1, man/tensorgan.3) equal what man/mkman.sh writes now
#      from the programs' --help and include/tensorgan.h (make man rewrites them);
#   2. man(1) formats each page without a warning (what lintian checks in the packages);
#   3. doxygen builds the HTML reference (make docs) with no warning (WARN_AS_ERROR).
# Needs the example programs built (BUILD, default build), doxygen and man-db (installed when
# missing, as root).
set -eu
cd "$(dirname "$0")/.."
B=${BUILD:-build}
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "docs_check: ok: $1"; }
bad() { failed=$((failed + 1)); echo "docs_check: FAILED: $1"; }
need=""
command -v doxygen >/dev/null 2>&1 || need="$need doxygen"
command -v man >/dev/null 2>&1 || need="$need man-db"
if [ -n "$need" ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
    else
        echo "docs_check: needs$need (sudo apt-get install -y$need)"; echo "docs_check: 0 passed, 1 failed"; exit 1
    fi
fi
T=$(mktemp -d /tmp/tg-docs.XXXXXX)
trap 'rm -rf "$T"' EXIT

BUILD=$B sh man/mkman.sh "$T/man"
stale=""
for f in "$T"/man/*; do
    n=$(basename "$f")
    cmp -s "$f" "man/$n" || { stale="$stale $n"; diff -u "man/$n" "$f" | head -n 20 || true; }
done
for f in man/*.[0-9]; do [ -e "$T/man/$(basename "$f")" ] || stale="$stale $(basename "$f")(no source)"; done
if [ -z "$stale" ]; then ok "man pages in step with --help and the header ($(ls "$T/man" | wc -l) pages)"
else bad "man pages out of step:$stale (run make man and commit)"; fi

warn=""
for f in man/*.[0-9]; do
    w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$f" 2>&1 >/dev/null || echo "man failed on $f")
    [ -z "$w" ] || { warn="$warn $(basename "$f")"; echo "$w" | head -n 5; }
done
if [ -z "$warn" ]; then ok "man formats every page without a warning"; else bad "man warns on:$warn"; fi

if doxygen docs/Doxyfile > "$T/doxygen.log" 2>&1 && [ ! -s "$T/doxygen.log" ] && [ -f build/docs/html/tensorgan_8h.html ]; then
    ok "doxygen: HTML reference in build/docs/html, no warnings"
else
    cat "$T/doxygen.log"; bad "doxygen failed or warned (docs/Doxyfile)"
fi
echo "docs_check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
