#!/usr/bin/env bash
# Builds the C# binding with Mono's mcs and runs bindings/SPEC.md (tests/SpecTests.cs) with mono.
#   EMBER_LIBRARY     path to libember.so.1 (unset: the platform's search path)
#   EMBER_TEST_MODEL  path to stories260K.gguf (default: the repository's)
#   EMBER_BINDINGS_BUILD  build root (default /tmp/ember-bindings); output goes to its csharp/ folder
# Exit 77 (skip) when mcs or mono is missing; non-zero when a build step or a test fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

for tool in mcs mono; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "csharp: '$tool' not found (Debian: apt-get install mono-mcs mono-runtime); skipping the C# binding tests"
        exit 77
    fi
done

out="${EMBER_BINDINGS_BUILD:-/tmp/ember-bindings}/csharp"
mkdir -p "$out/lib"

# Mono (like .NET) resolves [DllImport("ember")] to libember.so through dlopen's search path. Point a
# libember.so in our build folder at exactly the library named by EMBER_LIBRARY, and put that folder first.
ld_path="${LD_LIBRARY_PATH:-}"
if [ -n "${EMBER_LIBRARY:-}" ]; then
    if [ ! -f "$EMBER_LIBRARY" ]; then
        echo "csharp: EMBER_LIBRARY=$EMBER_LIBRARY does not exist" >&2
        exit 1
    fi
    lib=$(cd "$(dirname "$EMBER_LIBRARY")" && pwd)/$(basename "$EMBER_LIBRARY")
    ln -sfn "$lib" "$out/lib/libember.so"
    ld_path="$out/lib:$(dirname "$lib")${ld_path:+:$ld_path}"
fi

export EMBER_TEST_MODEL="${EMBER_TEST_MODEL:-$repo/tests/data/models/stories260K.gguf}"

echo "csharp: mcs $(mcs --version | sed 's/.*version //'), building into $out"
mcs -nologo -target:library -langversion:7.2 -warn:4 -debug \
    -out:"$out/Ember.dll" "$here"/src/*.cs
mcs -nologo -target:exe -langversion:7.2 -warn:4 -debug \
    -r:"$out/Ember.dll" -out:"$out/SpecTests.exe" "$here/tests/SpecTests.cs"

cd "$out"
run=(mono --debug SpecTests.exe "$@")
if command -v timeout >/dev/null 2>&1; then run=(timeout 600 "${run[@]}"); fi
LD_LIBRARY_PATH="$ld_path" "${run[@]}"
