#!/bin/sh
# Usage: tests/link-installed.sh ROOT LIBDIR PKGCONFIGDIR
#
# Proves that a program outside the tree compiles, links and runs against an installed kcom
# with nothing but `pkg-config --cflags --libs kcom`.  ROOT is the DESTDIR kcom was installed
# under ('' for the real prefix); LIBDIR and PKGCONFIGDIR are the configured directories.  The
# client is built twice: against the shared library, and statically against libkcom.a with
# `pkg-config --static` (when libkcom.a is installed).  Shared by tests/pkgconfig.test (a
# temporary DESTDIR) and `make installcheck` (the real prefix).
#
# Environment: CC (default cc), PKG_CONFIG (default pkg-config), KCOM_SAN_CFLAGS (a sanitizer
# build's flags: a client of such a library needs them too).
# Exit status: 0 passed, 1 failed, 77 skipped (no pkg-config or no C compiler).

if test $# -ne 3; then
	echo "usage: $0 ROOT LIBDIR PKGCONFIGDIR" >&2
	exit 1
fi
root=$1
libdir=$2
pcdir=$3
: "${CC:=cc}"
: "${PKG_CONFIG:=pkg-config}"

# CC may carry flags ("gcc -std=gnu11"): look up its first word only.
set -- $CC
if ! command -v "$1" >/dev/null 2>&1; then
	echo "SKIP: no C compiler ($CC)"
	exit 77
fi
set -- $PKG_CONFIG
if ! command -v "$1" >/dev/null 2>&1; then
	echo "SKIP: no pkg-config ($PKG_CONFIG)"
	exit 77
fi

if ! test -f "$root$pcdir/kcom.pc"; then
	echo "FAIL: $root$pcdir/kcom.pc is not installed" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kcom-link.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

cat >"$tmp/client.c" <<'CLIENT'
#include <stdio.h>
#include <string.h>

#include <com/com.h>
#include <bufio/bufio.h>
#include <bufio/helpers.h>
#include <impls/membuf.h>

int main(void)
{
	kcom_bufio_t *io;
	struct kcom_view view;
	char buf[6] = "";
	size_t n;

	if (KCOM_FAILED(kcom_create(&kcom_membuf_clsid, &kcom_bufio_iid, (void **)&io)))
		return 2;
	if (KCOM_FAILED(kcom_bufio_write(io, "hello", 0, 5, &n)) || n != 5)
		return 3;
	if (KCOM_FAILED(kcom_view_acquire(&view, kcom_bufio_absio(io), 0, 5, KCOM_VIEW_READ)))
		return 4;
	int same = view.len == 5 && memcmp(view.addr, "hello", 5) == 0;
	if (KCOM_FAILED(kcom_view_release(&view)) || !same)
		return 5;
	if (KCOM_FAILED(kcom_bufio_read(io, buf, 0, 5, &n)) || n != 5)
		return 6;
	kcom_bufio_release(io);
	printf("OK %s\n", buf);
	return 0;
}
CLIENT

PKG_CONFIG_PATH="$root$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
if test -n "$root"; then
	PKG_CONFIG_SYSROOT_DIR=$root
	export PKG_CONFIG_SYSROOT_DIR
fi

# Runs a command, echoing it first; a failure fails the test.
run() {
	echo "+ $*"
	"$@" || { echo "FAIL: exit status $?" >&2; exit 1; }
}

# Runs the client given as $1 (with the rest as environment) and checks what it printed.
check_client() {
	prog=$1
	shift
	echo "+ $* $prog"
	out=$(env "$@" "$prog" 2>&1)
	status=$?
	echo "$out"
	if test $status -ne 0 || test "$out" != "OK hello"; then
		echo "FAIL: $prog exited with $status, printed \"$out\" (wanted \"OK hello\")" >&2
		exit 1
	fi
}

cflags=$($PKG_CONFIG --cflags kcom) || { echo "FAIL: pkg-config --cflags kcom" >&2; exit 1; }
libs=$($PKG_CONFIG --libs kcom) || { echo "FAIL: pkg-config --libs kcom" >&2; exit 1; }
echo "pkg-config --cflags --libs kcom: $cflags $libs"

# Shared: the loader finds libkcom.so in the (temporary) installation.
run $CC $KCOM_SAN_CFLAGS -Wall -Werror $cflags -o "$tmp/client-shared" "$tmp/client.c" $libs
check_client "$tmp/client-shared" LD_LIBRARY_PATH="$root$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# Static: the same flags with --static, naming the archive instead of the shared library.
if ! test -f "$root$libdir/libkcom.a"; then
	echo "note: $root$libdir/libkcom.a is not installed (--disable-static?): static link not tried"
	exit 0
fi
slibs=$($PKG_CONFIG --static --libs kcom) || { echo "FAIL: pkg-config --static --libs kcom" >&2; exit 1; }
slibs=$(echo " $slibs " | sed 's/ -lkcom / -l:libkcom.a /')
case $slibs in
*-l:libkcom.a*) ;;
*) echo "FAIL: pkg-config --static --libs kcom gave no -lkcom: $slibs" >&2; exit 1 ;;
esac
run $CC $KCOM_SAN_CFLAGS -Wall -Werror $cflags -o "$tmp/client-static" "$tmp/client.c" $slibs
if command -v readelf >/dev/null 2>&1 && readelf -d "$tmp/client-static" | grep -q 'NEEDED.*libkcom'; then
	echo "FAIL: the static client still needs libkcom.so" >&2
	exit 1
fi
check_client "$tmp/client-static" LD_LIBRARY_PATH=/nonexistent
exit 0
