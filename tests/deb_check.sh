#!/bin/sh
# tests/deb_check.sh (make deb-check, after make deb) — the Debian packages in build/deb/ on a
# machine that has never seen the source: a pristine minimal bookworm (debootstrap, variant
# minbase), into which apt installs the four packages (their dependencies from the mirror) and
# then only gcc, pkg-config, cmake and make. There, as a user would:
#   1. an outside program (examples/train_xor.c, which checks its own loss) is built with
#      `pkg-config --cflags --libs tensorgan` (shared) and `tensorgan-static`, and as a CMake
#      project with find_package(tensorgan), and each one runs;
#   2. mangagan trains a few steps on the packaged faces and writes a checkpoint; fashion, cgan
#      and unet start; man finds every page;
#   3. the packages are purged and nothing of them is left.
# Needs root, network access to a Debian mirror and ~1 GB in DEB_ROOT (default /tmp/tg-debcheck).
# Not part of .ci/run (debootstrap takes minutes); the note of issue 29 has its output.
set -eu
cd "$(dirname "$0")/.."
ROOT=${DEB_ROOT:-/tmp/tg-debcheck}
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
B=${BUILD:-build}
[ "$(id -u)" = 0 ] || { echo "deb_check: needs root (debootstrap, chroot)"; exit 1; }
ls "$B"/deb/libtensorgan0_*.deb >/dev/null 2>&1 || { echo "deb_check: no packages in $B/deb (make deb first)"; exit 1; }
command -v debootstrap >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
passed=0
ok() { passed=$((passed + 1)); echo "deb_check: ok: $1"; }
die() { echo "deb_check: FAILED: $1"; echo "deb_check: $passed passed, 1 failed"; exit 1; }
umount_all() { for m in dev/pts dev proc sys; do umount "$ROOT/$m" 2>/dev/null || true; done; }
trap umount_all EXIT
umount_all
rm -rf "$ROOT"
t0=$(date +%s)
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 ||
    { tail -n 20 "$ROOT.debootstrap.log"; die "debootstrap"; }
echo "deb_check: pristine bookworm in $ROOT ($(( $(date +%s) - t0 )) s)"
mount -t proc proc "$ROOT/proc"; mount -t sysfs sys "$ROOT/sys"; mount --bind /dev "$ROOT/dev"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 sh -c "$1"; }
mkdir -p "$ROOT/debs" "$ROOT/work"
cp "$B"/deb/*.deb "$ROOT/debs/"
rm -f "$ROOT"/debs/*-dbgsym_*.deb
cp examples/train_xor.c "$ROOT/work/prog.c"

in_root 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /debs/*.deb >/tmp/apt.log 2>&1' ||
    { tail -n 20 "$ROOT/tmp/apt.log"; die "apt-get install of the packages"; }
in_root 'dpkg -l libtensorgan0 libtensorgan-dev tensorgan-tools tensorgan-data | grep "^ii"'
ok "apt installs libtensorgan0, libtensorgan-dev, tensorgan-tools and tensorgan-data with their dependencies"
in_root 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev pkg-config cmake make man-db >/tmp/apt2.log 2>&1' ||
    { tail -n 20 "$ROOT/tmp/apt2.log"; die "apt-get install of the compiler"; }

in_root 'cd /work && cc prog.c $(pkg-config --cflags --libs tensorgan) -o prog && ./prog | tail -n 1' | tee "$ROOT/tmp/out" |
    sed 's/^/    /'
grep -q "final loss" "$ROOT/tmp/out" || die "cc + pkg-config tensorgan"
ok "cc prog.c \$(pkg-config --cflags --libs tensorgan) builds, and the program runs"
in_root 'cd /work && cc prog.c $(pkg-config --cflags --libs tensorgan-static) -o prog-static && ! ldd prog-static | grep -q libtensorgan && ./prog-static | tail -n 1' >"$ROOT/tmp/out" 2>&1 ||
    { cat "$ROOT/tmp/out"; die "static link"; }
ok "pkg-config tensorgan-static links the library into the program, and it runs"
cat > "$ROOT/work/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.13)
project(consumer C)
find_package(tensorgan 0.1 REQUIRED)
add_executable(prog_cmake prog.c)
target_link_libraries(prog_cmake PRIVATE tensorgan::tensorgan)
CM
in_root 'cd /work && cmake -S . -B b >/tmp/cmake.log 2>&1 && make -C b >>/tmp/cmake.log 2>&1 && b/prog_cmake | tail -n 1' >"$ROOT/tmp/out" 2>&1 ||
    { cat "$ROOT/tmp/cmake.log" "$ROOT/tmp/out"; die "CMake find_package(tensorgan)"; }
ok "a CMake project with find_package(tensorgan) builds, and it runs"

in_root 'cd /work && mangagan train --steps 3 --batch 8 --width 8 --device cpu --log-every 1 --out run 2>&1' >"$ROOT/tmp/out" 2>&1 ||
    { cat "$ROOT/tmp/out"; die "mangagan train"; }
sed 's/^/    /' "$ROOT/tmp/out" | head -n 12
grep -q "images from /usr/bin/../share/tensorgan/faces.safetensors.xz" "$ROOT/tmp/out" || die "mangagan did not read the packaged faces"
[ -f "$ROOT/work/run/checkpoint.safetensors" ] || die "mangagan wrote no checkpoint"
ok "mangagan trains 3 steps on the packaged faces and writes a checkpoint"
in_root 'fashion --help >/dev/null && cgan --help >/dev/null && unet --help >/dev/null && man -w mangagan fashion cgan unet 3 tensorgan' ||
    die "the other programs or the man pages"
ok "fashion, cgan and unet start; man finds mangagan(1), fashion(1), cgan(1), unet(1), tensorgan(3)"

in_root 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq libtensorgan0 libtensorgan-dev tensorgan-tools tensorgan-data >/dev/null 2>&1'
left=$(find "$ROOT/usr" "$ROOT/etc" -name '*tensorgan*' | wc -l)
[ "$left" -eq 0 ] || { find "$ROOT/usr" "$ROOT/etc" -name '*tensorgan*'; die "purge left $left files"; }
ok "purging the four packages leaves nothing behind"
echo "deb_check: total $(( $(date +%s) - t0 )) s"
echo "deb_check: $passed passed, 0 failed"
