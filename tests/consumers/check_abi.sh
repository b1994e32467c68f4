#!/bin/sh
# Checks what a shared libember exports: the defined dynamic symbols equal capi/ember.symbols exactly (the
# version script's node, EMBER_<abi>, aside), none is STB_GNU_UNIQUE (which would make dlclose a no-op),
# and the SONAME is libember.so.<EMBER_ABI_VERSION from ember.h>.
#   check_abi.sh LIBEMBER.so capi/ember.symbols capi/ember.h
set -eu
lib=$1 symbols=$2 header=$3
NM=${NM:-nm} READELF=${READELF:-readelf}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

abi=$(sed -n 's/^#define EMBER_ABI_VERSION *\([0-9][0-9]*\).*/\1/p' "$header")
[ -n "$abi" ] || { echo "check_abi: no EMBER_ABI_VERSION in $header" >&2; exit 1; }

"$NM" -D --defined-only "$lib" >"$tmp/nm"
status=0
# Type 'u': a GNU unique symbol.
if awk '$2 == "u"' "$tmp/nm" | grep . >"$tmp/unique"; then
    echo "check_abi: STB_GNU_UNIQUE symbols in $lib (dlclose cannot unload it):" >&2
    cat "$tmp/unique" >&2
    status=1
fi
# Names without their version suffix (nm prints ember_x@@EMBER_1), the version node itself left out.
awk '{print $NF}' "$tmp/nm" | sed 's/@.*//' | grep -v "^EMBER_${abi}\$" | LC_ALL=C sort -u >"$tmp/exported"
grep -v '^[[:space:]]*\(#.*\)\{0,1\}$' "$symbols" | LC_ALL=C sort -u >"$tmp/expected"
if ! diff -u "$tmp/expected" "$tmp/exported" >"$tmp/diff"; then
    echo "check_abi: $lib exports other symbols than $symbols (- listed only, + exported only):" >&2
    cat "$tmp/diff" >&2
    status=1
fi
soname=$("$READELF" -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$soname" != "libember.so.$abi" ]; then
    echo "check_abi: SONAME of $lib is '$soname', expected libember.so.$abi" >&2
    status=1
fi
[ $status -eq 0 ] && echo "check_abi: $lib: $(wc -l <"$tmp/exported") symbols, equal to $(basename "$symbols"); no GNU unique symbol; SONAME $soname"
exit $status
