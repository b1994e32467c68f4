#!/usr/bin/env bash
# Builds the Rust binding and runs bindings/SPEC.md (tests/spec.rs) against a built libember.
#   EMBER_LIBRARY     path to libember.so.1 (its directory is the library directory)
#   EMBER_TEST_MODEL  path to tests/data/models/stories260K.gguf
#   EMBER_BINDINGS_BUILD  where build outputs go (default /tmp/ember-bindings); this crate uses <it>/rust
# Exit 77: skipped (no cargo).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Debian's toolchain first (rustc 1.63 is the oldest the crate supports), else whatever cargo is on PATH.
if [[ -x /usr/bin/cargo ]]; then
    cargo=/usr/bin/cargo
    export PATH="/usr/bin:$PATH"
elif command -v cargo > /dev/null 2>&1; then
    cargo="$(command -v cargo)"
else
    echo "rust binding: skipped: cargo is not installed (apt-get install cargo)" >&2
    exit 77
fi

: "${EMBER_LIBRARY:?set EMBER_LIBRARY to the path of libember.so.1}"
: "${EMBER_TEST_MODEL:?set EMBER_TEST_MODEL to tests/data/models/stories260K.gguf}"
if [[ ! -e "$EMBER_LIBRARY" ]]; then
    echo "rust binding: EMBER_LIBRARY=$EMBER_LIBRARY does not exist" >&2
    exit 1
fi
lib_dir="$(cd "$(dirname "$EMBER_LIBRARY")" && pwd)"
if [[ ! -e "$lib_dir/libember.so" ]]; then
    # The linker wants libember.so; a directory with only the SONAME file gets a link of its own.
    link_dir="${EMBER_BINDINGS_BUILD:-/tmp/ember-bindings}/rust/lib"
    mkdir -p "$link_dir"
    ln -sf "$(cd "$lib_dir" && pwd)/$(basename "$EMBER_LIBRARY")" "$link_dir/libember.so"
    ln -sf "$(cd "$lib_dir" && pwd)/$(basename "$EMBER_LIBRARY")" "$link_dir/$(basename "$EMBER_LIBRARY")"
    lib_dir="$link_dir"
fi

export EMBER_LIB_DIR="$lib_dir"
export LD_LIBRARY_PATH="$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CARGO_TARGET_DIR="${EMBER_BINDINGS_BUILD:-/tmp/ember-bindings}/rust"
export EMBER_TEST_MODEL

cd "$here"
echo "rust binding: $("$cargo" --version), library $EMBER_LIBRARY"
"$cargo" test --offline --jobs 1 -- --test-threads=2
