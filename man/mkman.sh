#!/bin/sh
# man/mkman.sh — writes the man pages from their sources, so they cannot drift from them:
#   PROG.1 for each example program, from the program's own `--help` (and each command's);
#   tensorgan.3 from include/tensorgan.h: its sections, declarations and their comments.
#
#   sh man/mkman.sh OUTDIR      (BUILD names the build directory with the programs; default build)
#
# The committed pages in man/ are its output; tests/man_check.sh regenerates them and fails when
# they differ (make man rewrites them). POSIX sh and awk only.
set -eu
cd "$(dirname "$0")/.."
OUT=${1:?usage: sh man/mkman.sh OUTDIR}
B=${BUILD:-build}
VERSION=$(sed -n 's/^VERSION *:= *//p' Makefile)
DATE=$(sed -n 's/^## [0-9.]* (\([0-9-]*\)).*/\1/p' CHANGELOG.md | head -n 1)
mkdir -p "$OUT"

# roff-safe text: backslashes escaped, a leading . or ' neutralised, "--" as two roff hyphens.
# Escaping happens on plain text only, before any roff markup is added around it.
AWK_ESC='function esc(s) { gsub(/\\/, "\\e", s); gsub(/--/, "\\-\\-", s); if (s ~ /^[.'"'"']/) s = "\\&" s; return s }'
esc() { awk "$AWK_ESC"' { print esc($0) }'; }

# the options of one `--help` text (after "options:") as .TP entries: "  --opt ARG   meaning"
opts_to_roff() {
    awk "$AWK_ESC"'
         /^options:/ { on = 1; next }
         on && /^  -/ {
             line = $0; sub(/^  /, "", line)
             n = match(line, /   +/)
             if (n) { head = substr(line, 1, n - 1); text = substr(line, n); sub(/^ +/, "", text) }
             else { head = line; text = "" }
             print ".TP"; print ".B " esc(head); if (text != "") print esc(text); next }
         on && /^$/ { on = 0 }
         on { sub(/^ +/, ""); print esc($0) }'
}

# the free text of a `--help` (between the usage line and "options:"/"commands:")
# (a blank line starts a new paragraph; none is left at the end)
summary() {
    awk "$AWK_ESC"'NR == 1 { next } /^(options|commands):/ { exit }
        /^ *$/ { if (n) para = 1; next }
        { if (para) print ".PP"; para = 0; n++; print esc($0) }'
}

page1() { # program, one-line name
    prog=$1; name=$2; bin="$B/examples/$prog"; f="$OUT/$prog.1"
    help=$("$bin" --help)
    up=$(echo "$prog" | tr a-z A-Z)
    {
        echo ".TH $up 1 \"$DATE\" \"libtensorgan $VERSION\" \"User Commands\""
        echo ".SH NAME"
        echo "$prog \\- $name"
        echo ".SH SYNOPSIS"
        echo "$help" | sed -n '1s/^usage: //p' | esc | sed 's/^/.B /'
        echo ".SH DESCRIPTION"
        echo "$help" | summary
        cmds=$(echo "$help" | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }')
        if [ -n "$cmds" ]; then
            echo ".SH COMMANDS"
            for c in $cmds; do
                ch=$("$bin" "$c" --help)
                echo ".SS \"$(echo "$ch" | sed -n '1s/^usage: //p' | esc)\""
                echo "$ch" | summary
                echo "$ch" | opts_to_roff
            done
        else
            echo ".SH OPTIONS"
            echo "$help" | opts_to_roff
        fi
        echo ".SH SEE ALSO"
        echo ".BR tensorgan (3),"
        echo "the README.md and docs/ of libtensorgan (/usr/share/doc/libtensorgan-dev)."
    } > "$f"
}

page1 mangagan "train, score and sample a DCGAN that draws 64x64 anime faces"
page1 fashion "train a small convolutional classifier on Fashion-MNIST"
page1 cgan "train and sample a class-conditional DCGAN on Fashion-MNIST"
page1 unet "train a U-Net that removes noise from Fashion-MNIST images"

# ---- tensorgan.3 from the header -------------------------------------------------------------
awk -v date="$DATE" -v version="$VERSION" '
function flush_doc(   i) { for (i = 1; i <= ndoc; i++) print doc[i]; if (dpre) print ".fi"; ndoc = 0; dpre = 0 }
# a doc comment line; indented lines (tables, lists) keep their layout in .nf
function add_doc(line) {
    if (line == "") return
    if (line ~ /^  /) { if (!dpre) doc[++ndoc] = ".nf"; dpre = 1 }
    else if (dpre) { doc[++ndoc] = ".fi"; dpre = 0 }
    doc[++ndoc] = text(line)
}
function text(s) { gsub(/\\/, "\\e", s); sub(/^[.'"'"']/, "\\\\&&", s); return s }
BEGIN {
    print ".TH TENSORGAN 3 \"" date "\" \"libtensorgan " version "\" \"libtensorgan manual\""
    print ".SH NAME"
    print "tensorgan \\- convolutional networks and GANs in C: tensors, autograd, layers, optimizers, checkpoints"
    print ".SH SYNOPSIS"
    print ".nf"
    print ".B #include <tensorgan.h>"
    print ".PP"
    print "cc prog.c $(pkg-config \\-\\-cflags \\-\\-libs tensorgan)"
    print ".fi"
    print ".SH DESCRIPTION"
}
# the file comment: the DESCRIPTION
NR > 1 && state == "" && /^ \* @file/ { state = "file"; next }
state == "file" && /^ \*\// { state = "body"; next }
state == "file" {
    line = $0; sub(/^ \* ?/, "", line)
    if (line ~ /^  /) { if (!pre) print ".nf"; pre = 1; print text(line); next }
    if (pre) { print ".fi"; pre = 0 }
    if (line == "") print ".PP"; else if (line ~ /^[A-Z][a-z]+$/) print ".SS " line; else print text(line)
    next
}
state == "" { next }
# a section banner: /* ---- ... , its first line of text the heading, the rest a paragraph
/^\/\* -----*$/ { banner = 1; first = 1; next }
banner && /^ \* -----*/ { banner = 0; next }
banner {
    line = $0; sub(/^ \* ?/, "", line)
    if (first) {
        title = line; rest = ""
        if (match(title, /\. /)) { rest = substr(title, RSTART + 2); title = substr(title, 1, RSTART - 1) }
        sub(/\.$/, "", title)
        print ".SH \"" toupper(text(title)) "\""
        if (rest != "") print text(rest)
        first = 0
    } else print text(line)
    next
}
/^\/\* ---- .* ----$/ { t = $0; sub(/^\/\* ---- /, "", t); sub(/ ----$/, "", t); print ".SS \"" text(t) "\""; insub = 1; next }
insub && /^ \* / { line = $0; sub(/^ \* ?/, "", line); if (line !~ /^-+ \*\/$/) print text(line); if ($0 ~ /\*\/$/) insub = 0; next }
insub && /\*\/$/ { insub = 0; next }
# a doc comment, kept until the declaration it documents
/^\/\*\*/ {
    ndoc = 0; dpre = 0; indoc = 1; line = $0; sub(/^\/\*\* ?/, "", line)
    if (sub(/ *\*\/$/, "", line)) indoc = 0
    add_doc(line)
    next
}
indoc { line = $0; sub(/^ \* ?/, "", line); if (sub(/ *\*\/$/, "", line)) indoc = 0; add_doc(line); next }
# declarations: functions, typedefs (whole blocks), macros
/^(TG_API|typedef)/ || decl {
    line = $0; gsub(/ *\/\*\*<.*\*\//, "", line); sub(/^TG_API /, "", line)
    if (!decl) { print ".PP"; print ".nf"; print ".B"; decl = 1; depth = 0 }
    print text(line)
    depth += gsub(/\{/, "{", line) - gsub(/\}/, "}", line)
    if (depth <= 0 && line ~ /;$/) { decl = 0; print ".fi"; if (ndoc) { print ".RS"; flush_doc(); print ".RE" } }
    next
}
/^#define TG_/ && !/TENSORGAN_H|TG_API/ { line = $0; sub(/^#define /, "", line); print ".PP"; print ".B " text(line); if (ndoc) flush_doc(); next }
END {
    print ".SH SEE ALSO"
    print ".BR mangagan (1),"
    print ".BR fashion (1),"
    print ".BR cgan (1),"
    print ".BR unet (1);"
    print "the HTML reference (make docs), docs/api.md (a tour by topic) and docs/architecture.md in the source."
}' include/tensorgan.h > "$OUT/tensorgan.3"
