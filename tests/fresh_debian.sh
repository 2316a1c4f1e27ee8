#!/bin/sh
# tests/fresh_debian.sh (make fresh-check) — proves the README's two commands on a bare machine.
#
# Builds a pristine minimal Debian bookworm with debootstrap (variant minbase plus only make, git
# and ca-certificates: no compiler, no pkg-config, no BLAS, no image libraries), copies this
# working tree into it and, inside a chroot:
#   1. as a non-root user, `make test` must stop at once with the one `sudo apt-get install ...`
#      line (exit non-zero, nothing compiled);
#   2. as root, `make test` alone must install what it needs and pass (0 failed);
#   3. as root, `make demo` must produce its sample grids (FRESH_DEMO_ARGS overrides DEMO_ARGS,
#      e.g. for a shorter run; unset: the real demo).
# Prints the time of each phase. Needs root, network access to a Debian mirror, and ~2 GB in
# FRESH_ROOT (default /tmp/tg-fresh). Not part of .ci/run (it takes many minutes).
set -eu
cd "$(dirname "$0")/.."
ROOT=${FRESH_ROOT:-/tmp/tg-fresh}
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "fresh_debian: needs root (debootstrap, chroot)"; exit 1; }
if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
umount_all() {
    for m in dev/pts dev proc sys; do umount "$ROOT/$m" 2>/dev/null || true; done
}
trap umount_all EXIT
umount_all
rm -rf "$ROOT"
t0=$(date +%s)
echo "fresh_debian: debootstrap bookworm (minbase + make git ca-certificates) into $ROOT"
debootstrap --variant=minbase --include=make,git,ca-certificates bookworm "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 ||
    { tail -n 20 "$ROOT.debootstrap.log"; exit 1; }
t1=$(date +%s)
echo "fresh_debian: debootstrap took $((t1 - t0)) s"
for tool in cc gcc pkg-config; do
    if chroot "$ROOT" sh -c "command -v $tool" >/dev/null 2>&1; then
        echo "fresh_debian: the pristine system already has $tool"; exit 1
    fi
done
mount -t proc proc "$ROOT/proc"
mount -t sysfs sys "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts" 2>/dev/null || true
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
# the working tree as git sees it (tracked + untracked, not ignored), twice: for root and a user
mkdir -p "$ROOT/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - | tar -xf - -C "$ROOT/src"
chroot "$ROOT" useradd -m tguser
cp -a "$ROOT/src" "$ROOT/home/tguser/src"
chroot "$ROOT" chown -R tguser:tguser /home/tguser/src

echo "fresh_debian: 1. make test as a non-root user"
set +e
out=$(chroot "$ROOT" su tguser -c 'cd ~/src && make test' 2>&1)
rc=$?
set -e
echo "$out" | sed 's/^/    /'
if [ $rc -eq 0 ] || ! echo "$out" | grep -q "sudo apt-get update && sudo apt-get install -y"; then
    echo "fresh_debian: FAILED: a non-root make test must print the apt line and stop"; exit 1
fi
if [ -e "$ROOT/home/tguser/src/build/libtensorgan.a" ]; then
    echo "fresh_debian: FAILED: something was built before the dependencies were there"; exit 1
fi

echo "fresh_debian: 2. make test as root"
t2=$(date +%s)
set +e
chroot "$ROOT" sh -c 'cd /src && make test' >"$ROOT.test.log" 2>&1
rc=$?
set -e
t3=$(date +%s)
tail -n 3 "$ROOT.test.log" | sed 's/^/    /'
summary=$(grep '^tests: ' "$ROOT.test.log" | tail -n 1)
if [ $rc -ne 0 ] || ! echo "$summary" | grep -q ' 0 failed'; then
    echo "fresh_debian: FAILED: make test exited $rc (log: $ROOT.test.log)"; exit 1
fi
echo "fresh_debian: make test took $((t3 - t2)) s: $summary"

echo "fresh_debian: 3. make demo as root"
set +e
if [ -n "${FRESH_DEMO_ARGS:-}" ]; then
    chroot "$ROOT" sh -c "cd /src && make demo DEMO_ARGS='$FRESH_DEMO_ARGS'" >"$ROOT.demo.log" 2>&1
else
    chroot "$ROOT" sh -c 'cd /src && make demo' >"$ROOT.demo.log" 2>&1
fi
rc=$?
set -e
t4=$(date +%s)
grids=$(ls "$ROOT/src/demo-out/samples/" 2>/dev/null | grep -c '\.png$' || true)
tail -n 2 "$ROOT.demo.log" | sed 's/^/    /'
if [ $rc -ne 0 ] || [ "$grids" -lt 1 ]; then
    echo "fresh_debian: FAILED: make demo exited $rc with $grids sample grids (log: $ROOT.demo.log)"; exit 1
fi
echo "fresh_debian: make demo took $((t4 - t3)) s and wrote $grids sample grids"
echo "fresh_debian: total $((t4 - t0)) s"
echo "fresh_debian: 3 passed, 0 failed"
