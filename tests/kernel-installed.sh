#!/bin/sh
# Usage: tests/kernel-installed.sh ROOT LIBDIR PKGCONFIGDIR
#
# Proves that a kernel outside the tree links the installed freestanding archive with one
# line: the example kernel's sources (examples/kernel/, taken from the source tree) are
# compiled and linked against ROOT's installation using only
#   pkg-config --variable=kernel_cflags kcom-freestanding   (the flags the archive was built with)
#   pkg-config --cflags --libs kcom-freestanding
# and then booted by tests/kernel.test.  ROOT is the DESTDIR ('' for the real prefix).
#
# Environment: top_srcdir, KCOM_KERNEL_CC and KCOM_KERNEL_LDFLAGS (from configure),
# PKG_CONFIG.  Exit status: 0 passed, 1 failed, 77 skipped (no toolchain, pkg-config or qemu).
set -u
if test $# -ne 3; then
	echo "usage: $0 ROOT LIBDIR PKGCONFIGDIR" >&2
	exit 1
fi
root=$1
libdir=$2
pcdir=$3
: "${top_srcdir:=.}"
: "${PKG_CONFIG:=pkg-config}"

if test -z "${KCOM_KERNEL_CC:-}"; then
	echo "SKIP: configure found no 32-bit freestanding toolchain: no freestanding archive to link"
	exit 77
fi
set -- $PKG_CONFIG
if ! command -v "$1" >/dev/null 2>&1; then
	echo "SKIP: no pkg-config ($PKG_CONFIG)"
	exit 77
fi
if ! test -f "$root$pcdir/kcom-freestanding.pc" || ! test -f "$root$libdir/kcom/i386-freestanding/libkcom-core.a"; then
	echo "FAIL: kcom-freestanding.pc or $libdir/kcom/i386-freestanding/libkcom-core.a is not installed under '$root'" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kcom-kernel.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

PKG_CONFIG_PATH="$root$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
if test -n "$root"; then
	PKG_CONFIG_SYSROOT_DIR=$root
	export PKG_CONFIG_SYSROOT_DIR
fi
kflags=$($PKG_CONFIG --variable=kernel_cflags kcom-freestanding) &&
	cflags=$($PKG_CONFIG --cflags kcom-freestanding) &&
	libs=$($PKG_CONFIG --libs kcom-freestanding) || { echo "FAIL: pkg-config kcom-freestanding" >&2; exit 1; }
# PKG_CONFIG_SYSROOT_DIR prefixes -I and -L, not a variable: the libs line is all we need.

src=$top_srcdir/examples/kernel
set -x
$KCOM_KERNEL_CC $kflags -std=gnu11 -O2 -Wall -Werror $cflags -I"$src" ${KCOM_KERNEL_LDFLAGS:-} \
	-Wl,-T,"$src/kernel.ld" -o "$tmp/kernel.elf" \
	"$src/boot.S" "$src/libc.c" "$src/serial.c" "$src/pmem.c" "$src/product.c" "$src/edu.c" "$src/main.c" \
	$libs || { set +x; echo "FAIL: the example kernel does not link against the installed archive" >&2; exit 1; }
set +x
KCOM_KERNEL_ELF=$tmp/kernel.elf
export KCOM_KERNEL_ELF
sh "$top_srcdir/tests/kernel.test"
