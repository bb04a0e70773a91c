#!/bin/bash
# What libmailoauth.so costs every program that calls sasl_client_init.
#
# libsasl2 loads every module in its plugin directory into every such
# program (Postfix, mbsync, ldapsearch, imtest...).  This measures
# `saslpluginviewer -c` with
#   A: Debian's own modules only,
#   B: the same plus libmailoauth.so,
#   C: the same plus an empty C++ module compiled here (the floor for any
#      module written in C++ with the shared runtime),
#   D: the same plus an empty C module (the floor for adding any module at
#      all: one more file to map, relocate and initialise),
# and prints the wall-time medians and the ratios B/A, C/A and D/A (target:
# B/A <= 1.25).  If valgrind is installed it also prints callgrind instruction
# counts for the three, which do not depend on machine noise.
#
# Usage: bench/plugin-load.sh [PATH/TO/libmailoauth.so]   (RUNS=50 by default)
set -eu

module=${1:-plugin/.libs/libmailoauth.so}
runs=${RUNS:-50}
if [ ! -f "$module" ]; then
    echo "usage: $0 PATH/TO/libmailoauth.so (build it first: make plugin/libmailoauth.la)" >&2
    exit 2
fi
command -v saslpluginviewer >/dev/null || { echo "$0: saslpluginviewer (sasl2-bin) is needed" >&2; exit 2; }
module=$(readlink -f "$module")
libdir=$(pkg-config --variable=libdir libsasl2 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)
system=$libdir/sasl2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/A" "$tmp/B" "$tmp/C" "$tmp/D"
for so in "$system"/*.so; do
    [ -e "$so" ] || continue
    case "$(basename "$so")" in libmailoauth.so) continue ;; esac
    for d in A B C D; do ln -s "$so" "$tmp/$d/"; done
done
ln -s "$module" "$tmp/B/libmailoauth.so"

# The empty C++ module: registers no mechanism, but uses the C++ runtime,
# so loading it costs what loading libstdc++ costs.
cat > "$tmp/empty.cc" <<'CC'
#include <sasl/sasl.h>
#include <sasl/saslplug.h>
#include <string>
static std::string *name;
extern "C" int sasl_client_plug_init(const sasl_utils_t *, int, int *out_version,
                                     sasl_client_plug_t **pluglist, int *plugcount) {
    if (!name) name = new std::string("empty");
    *out_version = SASL_CLIENT_PLUG_VERSION;
    *pluglist = nullptr;
    *plugcount = 0;
    return SASL_OK;
}
CC
${CXX:-g++} -O2 -shared -fPIC -o "$tmp/C/libemptycxx.so" "$tmp/empty.cc"
# The empty C module: no runtime but libc, no mechanism.
cat > "$tmp/empty.c" <<'C'
#include <sasl/sasl.h>
#include <sasl/saslplug.h>
int sasl_client_plug_init(const sasl_utils_t *u, int max, int *out_version,
                          sasl_client_plug_t **pluglist, int *plugcount) {
    (void)u; (void)max;
    *out_version = SASL_CLIENT_PLUG_VERSION;
    *pluglist = 0;
    *plugcount = 0;
    return SASL_OK;
}
C
${CC:-gcc} -O2 -shared -fPIC -o "$tmp/D/libemptyc.so" "$tmp/empty.c"

echo "modules: $(ls "$tmp/A" | tr '\n' ' ')"
echo "measuring saslpluginviewer -c, $runs runs each, interleaved..."
for i in $(seq "$runs"); do
    for d in A B C D; do
        t0=$EPOCHREALTIME
        SASL_PATH=$tmp/$d saslpluginviewer -c >/dev/null 2>&1
        t1=$EPOCHREALTIME
        echo "$(( (${t1/./} - ${t0/./}) ))" >> "$tmp/$d.times"
    done
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ma=$(median "$tmp/A.times"); mb=$(median "$tmp/B.times"); mc=$(median "$tmp/C.times")
md=$(median "$tmp/D.times")
printf '%-34s %8s us\n' "A  Debian modules only:" "$ma" \
    "B  + libmailoauth.so:" "$mb" "C  + empty C++ module:" "$mc" \
    "D  + empty C module:" "$md"
awk -v a="$ma" -v b="$mb" -v c="$mc" -v d="$md" 'BEGIN {
    printf "ratio B/A (libmailoauth.so):    %.3fx  (target <= 1.25x)\n", b / a
    printf "ratio C/A (empty C++ module):   %.3fx\n", c / a
    printf "ratio D/A (empty C module):     %.3fx\n", d / a
}'

if command -v valgrind >/dev/null; then
    echo "callgrind instruction counts (deterministic):"
    for d in A B C D; do
        n=$(SASL_PATH=$tmp/$d valgrind --tool=callgrind --callgrind-out-file=/dev/null \
                saslpluginviewer -c 2>&1 >/dev/null | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p')
        eval "i$d=$n"
    done
    printf '%-34s %12s Ir\n' "A  Debian modules only:" "$iA" \
        "B  + libmailoauth.so:" "$iB" "C  + empty C++ module:" "$iC" \
        "D  + empty C module:" "$iD"
    awk -v a="$iA" -v b="$iB" -v c="$iC" -v d="$iD" 'BEGIN {
        printf "ratio B/A: %.3fx   ratio C/A: %.3fx   ratio D/A: %.3fx\n", b / a, c / a, d / a
        printf "libmailoauth.so beyond an empty C module: %.0f Ir (%.1f%% of A)\n", b - d, 100 * (b - d) / a
    }'
else
    echo "(valgrind not installed: no instruction counts)"
fi
