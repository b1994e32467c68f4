#!/usr/bin/env bash
# Runs the Go binding's suite (bindings/SPEC.md). Called by scripts/test.sh; exits 77 (skip) without Go.
#   EMBER_LIBRARY     path to libember.so.1 (its directory is the library directory)
#   EMBER_TEST_MODEL  the test model (tests/data/models/stories260K.gguf)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v go >/dev/null 2>&1; then
    echo "bindings/go: go is not installed; skipping" >&2
    exit 77
fi
: "${EMBER_TEST_MODEL:=$here/../../tests/data/models/stories260K.gguf}"
work="${EMBER_BINDINGS_BUILD:-/tmp/ember-bindings}/go"
mkdir -p "$work/cache" "$work/path"
if [[ -n "${EMBER_LIBRARY:-}" ]]; then
    if [[ ! -e "$EMBER_LIBRARY" ]]; then
        echo "bindings/go: EMBER_LIBRARY=$EMBER_LIBRARY does not exist" >&2
        exit 1
    fi
    libdir="$(cd "$(dirname "$EMBER_LIBRARY")" && pwd)"
    # -lember needs libember.so; a directory with only libember.so.1 gets a link to it in the work folder.
    linkdir="$libdir"
    if [[ ! -e "$libdir/libember.so" ]]; then
        linkdir="$work/lib"
        mkdir -p "$linkdir"
        ln -sf "$libdir/$(basename "$EMBER_LIBRARY")" "$linkdir/libember.so"
    fi
    export CGO_LDFLAGS="-L$linkdir ${CGO_LDFLAGS:-}"
    export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi # else: libember from the linker's and loader's search paths
export EMBER_TEST_MODEL
export CGO_ENABLED=1
export GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GO111MODULE=on
export GOCACHE="$work/cache" GOPATH="$work/path"
cd "$here"
echo "bindings/go: $(go version); library $EMBER_LIBRARY"
go vet ./...
exec go test -count=1 -p 1 -v ./...
