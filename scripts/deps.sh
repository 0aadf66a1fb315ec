#!/bin/sh
# Installs what kcom needs to build, test and document itself on Debian (12 and later), with
# apt-get, as root (or through sudo).  Does nothing, quietly, when everything is there; runs
# `apt-get update` only when something is missing.  Exit status 0 when every package is
# installed afterwards.
set -eu

# python3: tests/inspect.test parses kcom-inspect --json with a real JSON parser.  clang and
# libclang-rt-14-dev: the libFuzzer target.  lcov: make coverage.  gcc-multilib and
# qemu-system-x86: the i386 freestanding core and the example kernel that `make check` boots
# (tests/kernel.test).  --no-install-recommends below keeps QEMU's recommended firmware and GUI
# packages out.  libevent-dev and libabsl-dev: the benchmark's peers (optional).
packages="build-essential autoconf automake libtool libltdl-dev check pkg-config doxygen valgrind libglib2.0-dev
python3 clang libclang-rt-14-dev lcov gcc-multilib qemu-system-x86 libevent-dev libabsl-dev"

missing=
for pkg in $packages; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	if test "$status" != installed; then
		# pkgconf provides pkg-config; do not swap one for the other.
		if test "$pkg" = pkg-config && command -v pkg-config >/dev/null 2>&1; then
			continue
		fi
		missing="$missing $pkg"
	fi
done
test -n "$missing" || exit 0

if test "$(id -u)" -eq 0; then
	as_root=
elif command -v sudo >/dev/null 2>&1; then
	as_root=sudo
else
	echo "deps.sh: missing packages:$missing; run this script as root to install them" >&2
	exit 1
fi

echo "deps.sh: installing$missing"
$as_root apt-get update -qq
# shellcheck disable=SC2086 # one word per package
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
