#!/usr/bin/env bash
# Builds the Debian packages from a clean copy of the working tree (or from
# a release tarball, `make dist`'s, with the tree's debian/ added), checks
# them with lintian and runs the installation test (test_packages.sh) on the
# result.  Prints one TAP stream on stdout (plan at the end); build and
# lintian logs go to $MAILOAUTH_PKG_LOGDIR (default: the temporary build
# directory, kept when something fails).  Needs root for the installation
# test and the build dependencies plus devscripts, lintian and fakeroot.
# The package's unit tests do not run in this build (nocheck; see below)
# unless MAILOAUTH_PKG_CHECK=1.
#
#   tests/install/build-and-test.sh [--keep] [--tarball FILE]
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
keep= tarball=
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1; shift ;;
    --tarball) tarball=${2:?--tarball needs a file}; shift 2 ;;
    *) echo "usage: $0 [--keep] [--tarball FILE]" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mailoauth-pkg.XXXXXX") || exit 1
logdir=${MAILOAUTH_PKG_LOGDIR:-$work}
mkdir -p "$logdir"
failed=0
n=0
ok()     { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; failed=1; shift; local l; for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done; }
finish() {
  echo "1..$n"
  if [ -z "$keep" ] && [ "$failed" = 0 ]; then rm -rf "$work"; else echo "# build directory kept: $work"; fi
}
trap finish EXIT

version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
upstream=${version%-*}
src="$work/mailoauth-$upstream"
mkdir -p "$src"

start=$(date +%s)
if [ -n "$tarball" ]; then
  # What a Debian maintainer builds: the release tarball (its one top
  # directory, whatever its name) plus debian/ from the tree.
  tar -C "$src" --strip-components=1 -xzf "$tarball" &&
    (cd "$top" && git ls-files -z debian | tar --null -T - -cf -) | tar -C "$src" -xf - ||
    { not_ok "unpack $tarball and add debian/"; exit 1; }
else
  # The working tree as it is (tracked files and untracked ones that are
  # not ignored), without build products, configure output or other builds.
  (cd "$top" && git ls-files -z -c -o --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf -) | tar -C "$src" -xf - || { not_ok "copy the source tree"; exit 1; }
fi

# 1: the build.  Without the package's own test subset (debian/rules runs
# every test but the Python ones in dh_auto_test, which
# DEB_BUILD_OPTIONS=nocheck skips): ./run-tests ran each of them in make
# check already, and the unit tests again in make distcheck and under the
# sanitizers; building and running them once more here took half of this
# build's time.  The packages are the same either way, file for file, and
# so is lintian's verdict.
build_options=${DEB_BUILD_OPTIONS:-}
[ "${MAILOAUTH_PKG_CHECK:-}" = 1 ] || build_options="${build_options:+$build_options }nocheck"
what="dpkg-buildpackage -us -uc -b${tarball:+ from $(basename "$tarball")}${build_options:+ (DEB_BUILD_OPTIONS=$build_options)}"
if (cd "$src" && DEB_BUILD_OPTIONS="$build_options" dpkg-buildpackage -us -uc -b -j"$(nproc)") \
     >"$logdir/build.log" 2>&1; then
  ok "$what ($(( $(date +%s) - start ))s)"
else
  not_ok "$what" "$(tail -n 40 "$logdir/build.log")" "full log: $logdir/build.log"
  not_ok "lintian: no errors and no warnings # not run: the build failed"
  not_ok "installation test # not run: the build failed"
  exit 1
fi

changes=$(ls "$work"/mailoauth_*.changes)
debs=("$work"/*.deb)

# 2: lintian on the .changes (binary packages and their changes file).
# (As root, lintian says it would rather not be; that line is not a tag.)
if lintian --fail-on error,warning --display-info "$changes" 2>&1 \
     | grep -v '^running with root privileges is not recommended' >"$logdir/lintian.log"; [ "${PIPESTATUS[0]}" = 0 ]; then
  ok "lintian: no errors and no warnings ($(grep -c '^[IPX]:' "$logdir/lintian.log") info/pedantic/experimental tags)"
  sed 's/^/# /' "$logdir/lintian.log"
else
  not_ok "lintian: no errors and no warnings" "$(cat "$logdir/lintian.log")"
fi

# 3..: the installation test, renumbered into this stream.
if [ "$(id -u)" != 0 ]; then
  not_ok "installation test # not run: needs root"
  exit 1
fi
while IFS= read -r line; do
  case "$line" in
    "ok "*)     n=$((n + 1)); echo "ok $n ${line#ok [0-9]* }" ;;
    "not ok "*) n=$((n + 1)); failed=1; echo "not ok $n ${line#not ok [0-9]* }" ;;
    1..*) ;;
    "#"*) echo "$line" ;;
    *) echo "# $line" ;;
  esac
done < <("$here/test_packages.sh" "${debs[@]}" 2>&1)
