#!/bin/sh
# Installs into a scratch prefix, then builds and runs a program outside the tree with nothing but
# `cc prog.c $(pkg-config --cflags --libs tensorgan)` — the way users build — and uninstalls.
set -eu
PREFIX=$(mktemp -d /tmp/tg-prefix.XXXXXX)
trap 'rm -rf "$PREFIX"' EXIT
make -s install PREFIX="$PREFIX" >/dev/null
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
cp examples/train_xor.c "$PREFIX/prog.c"
(cd "$PREFIX" && cc prog.c $(pkg-config --cflags --libs tensorgan) -Wl,-rpath,"$PREFIX/lib" -o prog)
"$PREFIX/prog" | tail -n 1
# static linking through pkg-config --static
(cd "$PREFIX" && cc prog.c $(pkg-config --static --cflags tensorgan) "$PREFIX/lib/libtensorgan.a" \
    $(pkg-config --static --libs-only-l --libs-only-L --libs-only-other tensorgan | sed 's/-ltensorgan//') -o prog-static)
"$PREFIX/prog-static" | tail -n 1
# the installed mangagan finds the bundled faces under $PREFIX/share/tensorgan
out=$("$PREFIX/bin/mangagan" train --steps 1 --batch 4 --width 4 --device cpu --out "$PREFIX/run")
echo "$out" | grep -q "20000 images from $PREFIX/bin/../share/tensorgan/faces.safetensors.xz" ||
    { echo "install_check: installed mangagan did not find the bundled faces:"; echo "$out"; exit 1; }
rm -rf "$PREFIX/run"
make -s uninstall PREFIX="$PREFIX"
left=$(find "$PREFIX" -name 'libtensorgan*' -o -name tensorgan.h -o -name tensorgan.pc -o -name mangagan -o -name 'faces*' | wc -l)
[ "$left" -eq 0 ] || { echo "install_check: uninstall left $left files"; exit 1; }
echo "install_check: 3 passed, 0 failed"
