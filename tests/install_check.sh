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
make -s uninstall PREFIX="$PREFIX"
left=$(find "$PREFIX" -name 'libtensorgan*' -o -name tensorgan.h -o -name tensorgan.pc | wc -l)
[ "$left" -eq 0 ] || { echo "install_check: uninstall left $left files"; exit 1; }
echo "install_check: 2 passed, 0 failed"
