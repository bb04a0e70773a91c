#!/bin/sh
# The manual pages against the code, so that neither drifts alone:
#  - every verb and every --option that `mailoauth --help` prints has an
#    entry (a .TP tag) in man/mailoauth.1, options written as \-\-name;
#  - every key of kGlobalKeys and kAccountKeys in common/config.cc has an
#    entry in man/mailoauth.conf.5;
#  - groff finds nothing to warn about in either page.
# TAP output; run by `make check` with top_srcdir and top_builddir exported,
# or by hand from the source tree.

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/../..}"
: "${top_builddir:=$top_srcdir}"
bin="$top_builddir/mailoauth"
man1="$top_srcdir/man/mailoauth.1"
man5="$top_srcdir/man/mailoauth.conf.5"
config_cc="$top_srcdir/common/config.cc"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_manpages.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# Collect the checks first so the plan comes before the results.
n=0
ok() {
    n=$((n + 1))
    printf 'ok %d - %s\n' "$n" "$1" >>"$tmp/results"
}
not_ok() {
    n=$((n + 1))
    printf 'not ok %d - %s\n' "$n" "$1" >>"$tmp/results"
    shift
    for text in "$@"; do printf '%s\n' "$text" | sed 's/^/# /' >>"$tmp/results"; done
}
skip() {
    n=$((n + 1))
    printf 'ok %d - %s # SKIP %s\n' "$n" "$1" "$2" >>"$tmp/results"
}
: >"$tmp/results"

# The first word of each .TP tag (the line after .TP), without the macro
# and quotes: what a page documents as an entry.
tags() {
    awk 'tag { sub(/^\.[A-Z]+[ \t]+/, ""); gsub(/\042/, ""); print; tag = 0; next }
         /^\.TP/ { tag = 1 }' "$1"
}

# --- mailoauth.1 against --help ---------------------------------------------
if "$bin" --help >"$tmp/help" 2>"$tmp/help.err"; then
    ok "mailoauth --help runs"
else
    not_ok "mailoauth --help runs" "$bin --help failed: $(head -c 500 "$tmp/help.err")"
fi
# Options: every --name anywhere in the help text (usage lines included).
grep -o -- '--[a-z][a-z0-9-]*' "$tmp/help" | sort -u >"$tmp/options"
# Verbs: the first word of each line of the "Verbs:" block.
awk '/^Verbs:/ { v = 1; next } v && /^$/ { v = 0 } v { print $1 }' "$tmp/help" >"$tmp/verbs"
if [ -s "$tmp/options" ] && [ -s "$tmp/verbs" ]; then
    ok "--help lists $(wc -l <"$tmp/verbs") verbs and $(wc -l <"$tmp/options") options"
else
    not_ok "--help lists verbs and options" "found no verbs or no options in the help text"
fi

tags "$man1" >"$tmp/tags1"
while read -r opt; do
    name=${opt#--}
    # \-\-name, not followed by more of a name: "\-\-user" must not be
    # satisfied by "\-\-user\-agent".
    re=$(printf '%s' "$name" | sed 's/-/\\\\-/g')
    re="\\\\-\\\\-$re([^a-z0-9\\\\]|\$)"
    if grep -Eq -- "$re" "$tmp/tags1"; then
        ok "mailoauth.1 documents $opt"
    elif grep -Eq -- "$re" "$man1"; then
        not_ok "mailoauth.1 documents $opt" "mentioned, but has no .TP entry in man/mailoauth.1"
    else
        not_ok "mailoauth.1 documents $opt" "man/mailoauth.1 has no '\\-\\-$name' (write options as \\-\\-name)"
    fi
done <"$tmp/options"

while read -r verb; do
    if awk -v w="$verb" '$1 == w { f = 1 } END { exit !f }' "$tmp/tags1"; then
        ok "mailoauth.1 documents the verb $verb"
    else
        not_ok "mailoauth.1 documents the verb $verb" "no .TP entry starting with '$verb' in man/mailoauth.1"
    fi
done <"$tmp/verbs"

# --- mailoauth.conf.5 against common/config.cc ------------------------------
awk '/k(Global|Account)Keys\[\] = \{/ { k = 1 }
     k { s = $0; while (match(s, /"[a-z0-9_]+"/)) { print substr(s, RSTART + 1, RLENGTH - 2); s = substr(s, RSTART + RLENGTH) } }
     k && /\};/ { k = 0 }' "$config_cc" | sort -u >"$tmp/keys"
if [ -s "$tmp/keys" ]; then
    ok "common/config.cc lists $(wc -l <"$tmp/keys") keys"
else
    not_ok "common/config.cc lists keys" "found no kGlobalKeys/kAccountKeys in $config_cc"
fi
tags "$man5" >"$tmp/tags5"
while read -r key; do
    if awk -v w="$key" '$1 == w { f = 1 } END { exit !f }' "$tmp/tags5"; then
        ok "mailoauth.conf.5 documents $key"
    else
        not_ok "mailoauth.conf.5 documents $key" "no .TP entry starting with '$key' in man/mailoauth.conf.5"
    fi
done <"$tmp/keys"

# --- groff ------------------------------------------------------------------
for page in "$man1" "$man5"; do
    base=$(basename "$page")
    if ! command -v groff >/dev/null 2>&1; then
        skip "groff finds no problem in $base" "groff is not installed"
        continue
    fi
    if groff -man -ww -z "$page" >"$tmp/groff" 2>&1 && [ ! -s "$tmp/groff" ]; then
        ok "groff finds no problem in $base"
    else
        not_ok "groff finds no problem in $base" "$(head -n 5 "$tmp/groff")"
    fi
done

echo "1..$n"
cat "$tmp/results"
