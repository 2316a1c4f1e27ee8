#!/bin/sh
# Installs libtensorgan and builds programs outside the tree exactly as the README shows:
#   cc prog.c $(pkg-config --cflags --libs tensorgan)           (shared)
#   cc prog.c $(pkg-config --cflags --libs tensorgan-static)    (static)
#   CMake: find_package(tensorgan) + tensorgan::tensorgan / tensorgan::tensorgan_static
# and runs them. Two installs:
#   1. a scratch prefix, with the two variables the README names for a non-system prefix;
#   2. as root, when /usr/local holds no tensorgan yet: the system prefix, with the README's lines
#      as written (no rpath, no LD_LIBRARY_PATH) — `make install` must run ldconfig for them to start.
# Each is uninstalled and checked for leftovers. Needs cmake (installed when missing, as root).
set -eu
cd "$(dirname "$0")/.."
passed=0
ok() { passed=$((passed + 1)); echo "install_check: ok: $1"; }
die() { echo "install_check: FAILED: $1"; echo "install_check: $passed passed, 1 failed"; exit 1; }

if ! command -v cmake >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >/dev/null
    else
        die "cmake is missing (sudo apt-get install -y cmake)"
    fi
fi

WORK=$(mktemp -d /tmp/tg-install.XXXXXX)
SYSTEM_INSTALLED=0
cleanup() {
    if [ "$SYSTEM_INSTALLED" = 1 ]; then make -s uninstall PREFIX=/usr/local >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# programs: the README's example (it checks its own final loss) and a CMake project around it
cp examples/train_xor.c "$WORK/prog.c"
cat > "$WORK/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.13)
project(tg_consumer C)
find_package(tensorgan 0.1 REQUIRED)
add_executable(prog_shared prog.c)
target_link_libraries(prog_shared PRIVATE tensorgan::tensorgan)
add_executable(prog_static prog.c)
target_link_libraries(prog_static PRIVATE tensorgan::tensorgan_static)
CM

# $1: label. Builds the README's two cc lines and the CMake project in $WORK/$1, runs each.
build_and_run() {
    d="$WORK/$1"; mkdir -p "$d"; cp "$WORK/prog.c" "$WORK/CMakeLists.txt" "$d/"
    (cd "$d" && cc prog.c $(pkg-config --cflags --libs tensorgan) -o prog) || die "$1: shared link"
    "$d/prog" | tail -n 1 | grep -q "final loss" || die "$1: shared program did not run"
    ok "$1: cc + pkg-config tensorgan (shared) builds and runs"
    (cd "$d" && cc prog.c $(pkg-config --cflags --libs tensorgan-static) -o prog-static) || die "$1: static link"
    if ldd "$d/prog-static" | grep -q libtensorgan; then die "$1: the static program links libtensorgan.so"; fi
    "$d/prog-static" | tail -n 1 | grep -q "final loss" || die "$1: static program did not run"
    ok "$1: cc + pkg-config tensorgan-static builds a program without libtensorgan.so, and it runs"
    (cd "$d" && mkdir -p b && cd b && cmake -S .. -B . $2 >cmake.log 2>&1 && make >>cmake.log 2>&1) ||
        { cat "$d/b/cmake.log"; die "$1: CMake project"; }
    "$d/b/prog_shared" | tail -n 1 | grep -q "final loss" || die "$1: CMake shared program did not run"
    if ldd "$d/b/prog_static" | grep -q libtensorgan; then die "$1: CMake static program links the .so"; fi
    "$d/b/prog_static" | tail -n 1 | grep -q "final loss" || die "$1: CMake static program did not run"
    ok "$1: find_package(tensorgan) with tensorgan::tensorgan and tensorgan::tensorgan_static"
}

# 1. scratch prefix: the README's two variables for a prefix outside the loader's path. An
#    ldconfig earlier on PATH records any call that would rewrite the system's loader cache (it
#    passes queries, -p and -N, to the real one): a private prefix must not cause one, even as root.
P="$WORK/prefix"
mkdir -p "$WORK/fakebin"
cat > "$WORK/fakebin/ldconfig" <<FAKE
#!/bin/sh
for a in "\$@"; do case "\$a" in -p|-N) exec /sbin/ldconfig "\$@" ;; esac; done
echo "ldconfig \$*" >> "$WORK/ldconfig-calls"
FAKE
chmod +x "$WORK/fakebin/ldconfig"
PATH="$WORK/fakebin:$PATH" make -s install PREFIX="$P" >/dev/null
[ ! -e "$WORK/ldconfig-calls" ] || die "make install PREFIX=<private dir> ran the system's ldconfig: $(cat "$WORK/ldconfig-calls")"
ok "make install into a private prefix leaves the system's loader cache alone"
[ -f "$P/share/tensorgan/tg_safetensors.py" ] || die "the PyTorch loader (tg_safetensors.py) was not installed"
export PKG_CONFIG_PATH="$P/lib/pkgconfig" LD_LIBRARY_PATH="$P/lib"
build_and_run scratch "-DCMAKE_PREFIX_PATH=$P"
unset PKG_CONFIG_PATH LD_LIBRARY_PATH
out=$("$P/bin/mangagan" train --steps 1 --batch 4 --width 4 --device cpu --out "$WORK/run")
echo "$out" | grep -q "20000 images from $P/bin/../share/tensorgan/faces.safetensors.xz" ||
    { echo "$out"; die "installed mangagan did not find the bundled faces"; }
ok "installed mangagan finds the bundled faces"
for t in fashion cgan unet; do
    "$P/bin/$t" --help >/dev/null || die "installed $t --help failed"
done
for m in man1/mangagan.1 man1/fashion.1 man1/cgan.1 man1/unet.1 man3/tensorgan.3; do
    [ -f "$P/share/man/$m" ] || die "$m not installed under $P/share/man"
done
if command -v man >/dev/null 2>&1; then
    MANPATH="$P/share/man" man -w mangagan fashion cgan unet 3 tensorgan >/dev/null 2>&1 ||
        die "man does not find the installed pages under $P/share/man"
fi
ok "fashion, cgan and unet installed and start; their man pages and tensorgan(3) found by man"
PATH="$WORK/fakebin:$PATH" make -s uninstall PREFIX="$P" >/dev/null
[ ! -e "$WORK/ldconfig-calls" ] || die "make uninstall PREFIX=<private dir> ran the system's ldconfig"
left=$(find "$P" -name 'libtensorgan*' -o -name 'tensorgan*' -o -name mangagan -o -name fashion -o -name cgan -o -name unet \
    -o -name '*.[13]' -o -name 'faces*' -o -name 'tg_*' | wc -l)
[ "$left" -eq 0 ] || die "uninstall left $left files under $P"
ok "uninstall removes everything it installed"

# 2. the system prefix, the README's lines exactly as written
if [ "$(id -u)" = 0 ] && [ ! -e /usr/local/include/tensorgan.h ] && [ ! -e /usr/local/lib/libtensorgan.a ]; then
    SYSTEM_INSTALLED=1
    make -s install >/dev/null
    build_and_run system ""
    make -s uninstall >/dev/null
    SYSTEM_INSTALLED=0
    ldconfig -p | grep -q libtensorgan && die "ldconfig still lists libtensorgan after uninstall"
    ok "system uninstall leaves nothing in the loader cache"
else
    echo "install_check: system-prefix check skipped (not root, or /usr/local already has a tensorgan)"
fi
echo "install_check: $passed passed, 0 failed"
