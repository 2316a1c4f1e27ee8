#!/bin/sh
# tests/web/check.sh (make test-web; in .ci/run) — the browser page (examples/web/) in Debian's
# chromium, headless: the repository root served by `python3 -m http.server` (as a user would),
# the page opened at /examples/web/, driven by playwright-core (tests/web/check.mjs: the grid's
# pixels against the native library's for the same noise, the slider, no page errors). Needs
# make wasm and build/examples/face (make test-web builds both and installs chromium). npm ci
# --ignore-scripts installs playwright-core into tests/web/node_modules (no browser download: it
# drives /usr/bin/chromium). TG_WEB_SCREENSHOT=FILE.png keeps a screenshot.
# Ends with "web_check: N passed, N failed". BUILD names the native build directory.
set -eu
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
MODEL=examples/mangagan/models/generator.safetensors
T=$(mktemp -d /tmp/tg-web.XXXXXX)
srv=""
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "web_check: FAILED: $1"; echo "web_check: 0 passed, 1 failed"; exit 1; }
# node and npm by command, not by package (a Node.js from elsewhere brings its own npm)
need=""
command -v node >/dev/null 2>&1 || need="$need nodejs"
command -v npm >/dev/null 2>&1 || need="$need npm"
if [ -n "$need" ]; then
    [ "$(id -u)" = 0 ] || fail "needs$need (sudo apt-get install -y$need)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$major" -ge 20 ] || fail "playwright-core needs Node.js 20 or newer; this node is $(node --version 2>/dev/null || echo missing)"
if [ ! -d tests/web/node_modules/playwright-core ]; then
    (cd tests/web && npm ci --ignore-scripts --no-audit --no-fund >/dev/null 2>&1) || fail "npm ci in tests/web"
fi
# a free port, then the server; wait until it answers
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
/usr/bin/python3 -m http.server "$port" --bind 127.0.0.1 >"$T/server.log" 2>&1 &
srv=$!
i=0
until /usr/bin/python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/examples/web/')" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "the static server did not start (port $port)"; sleep 0.2
done
set +e
node tests/web/check.mjs "http://127.0.0.1:$port/examples/web/" "$B/examples/face" "$MODEL" "$T" \
    ${TG_WEB_SCREENSHOT:+"$TG_WEB_SCREENSHOT"} | tee "$T/out.log"
set -e
p=$(grep -c '^web_check: ok:' "$T/out.log" || true)
f=$(grep -c '^web_check: FAILED:' "$T/out.log" || true)
[ "$p" -gt 0 ] || f=$((f + 1)) # nothing checked is a failure (the page never loaded)
echo "web_check: $p passed, $f failed"
[ "$f" -eq 0 ]
