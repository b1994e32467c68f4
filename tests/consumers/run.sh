#!/usr/bin/env bash
# ember as a dependency, the way its users take it: installs ember twice (static, shared) into temporary
# prefixes, then builds and runs each out-of-tree consumer project against them, and checks that each prints
# generated text:
#   cmake-cxx       find_package(ember CONFIG), the C++ API           static (libember.so exports C only)
#   cmake-subdir    add_subdirectory(ember), ember::ember, C++ API    built from source
#   cmake-c         find_package(ember CONFIG), ember.h               static, shared
#   make-pkgconfig  make + pkg-config (--static for libember.a), ember.h  static, shared
#   conan           `conan create conan.py` and its test_package      static, shared, and static with cuda=True
#                                                                     where nvcc is found; when conan is importable
#                                                                     from $EMBER_PYDEPS (scripts/test.sh puts it there)
# It also checks the installed libember.so with check_abi.sh.
#   tests/consumers/run.sh BUILD_TMP [MODEL]     (ctest: consumers)
# BUILD_TMP is emptied first. MODEL defaults to tests/data/models/stories260K.gguf. Builds use -j2 (at most
# $EMBER_CONSUMERS_JOBS); each step's output goes to BUILD_TMP/logs, shown when the step fails.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TMP=${1:?usage: run.sh BUILD_TMP [MODEL]}
MODEL=${2:-$ROOT/tests/data/models/stories260K.gguf}
JOBS=${EMBER_CONSUMERS_JOBS:-2}
PYDEPS=${EMBER_PYDEPS:-$HOME/.cache/ember/python}
[ -f "$MODEL" ] || { echo "consumers: no model at $MODEL" >&2; exit 1; }
MODEL=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")

rm -rf "$TMP"
mkdir -p "$TMP/logs"
TMP=$(cd "$TMP" && pwd)
GENERATOR=() CONAN_GENERATOR=()
if command -v ninja >/dev/null; then
    GENERATOR=(-G Ninja) CONAN_GENERATOR=(-c tools.cmake.cmaketoolchain:generator=Ninja)
fi
# Paths under BUILD_TMP are rewritten relative for ccache, so Conan's build folders (whose names change
# from run to run) hit the cache too.
export CCACHE_BASEDIR=$TMP

# step NAME COMMAND...: runs it with its output in logs/NAME.log; on failure names the log, shows its tail.
step() {
    local name=$1; shift
    if ! "$@" >"$TMP/logs/$name.log" 2>&1; then
        echo "consumers: $name failed; the last lines of $TMP/logs/$name.log:" >&2
        tail -n 30 "$TMP/logs/$name.log" >&2
        exit 1
    fi
}

# check NAME KIND PROGRAM: runs PROGRAM MODEL; it must print the prompt, generated text and "tokens: N>0";
# a program linked against the shared library must need libember.so.1, one linked statically must not.
check() {
    local name=$1 kind=$2 program=$3 log out
    log=run-$(printf '%s' "$name" | tr -c 'A-Za-z0-9-' '-' | tr -s '-')
    step "$log" "$program" "$MODEL"
    out=$TMP/logs/$log.log
    if ! grep -q '^Once upon a time.' "$out" || ! grep -Eq '^tokens: [1-9][0-9]*$' "$out"; then
        echo "consumers: $name printed no generated text:" >&2
        cat "$out" >&2
        exit 1
    fi
    if [ "$kind" = shared ] && ! readelf -d "$program" | grep -q 'NEEDED.*\[libember\.so\.1\]'; then
        echo "consumers: $name does not need libember.so.1" >&2; exit 1
    fi
    if [ "$kind" = static ] && readelf -d "$program" | grep -q 'NEEDED.*libember'; then
        echo "consumers: $name links libember dynamically" >&2; exit 1
    fi
    echo "consumers: $name: $(head -n 1 "$out")"
}

# ember itself, static and shared, without its tests and examples.
for kind in static shared; do
    shared=OFF; [ $kind = shared ] && shared=ON
    step "ember-$kind-configure" cmake -S "$ROOT" -B "$TMP/ember-$kind" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=$shared -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_EXAMPLES=OFF \
        -DCMAKE_INSTALL_PREFIX="$TMP/prefix-$kind"
    step "ember-$kind-build" cmake --build "$TMP/ember-$kind" -j "$JOBS"
    step "ember-$kind-install" cmake --install "$TMP/ember-$kind"
done
LIBDIR=$(cd "$TMP/prefix-shared" && dirname "$(find . -name 'libember.so.1' | head -n 1)")
step abi-installed sh "$HERE/check_abi.sh" "$TMP/prefix-shared/$LIBDIR/libember.so.1" "$ROOT/capi/ember.symbols" "$ROOT/capi/ember.h"
echo "consumers: installed $(tail -n 1 "$TMP/logs/abi-installed.log" | sed 's/^check_abi: [^:]*: //')"

# CMake projects (find_package through CMAKE_PREFIX_PATH).
cmake_consumer() {
    local project=$1 kind=$2 program=$3
    local build=$TMP/$project-$kind
    step "$project-$kind-configure" cmake -S "$HERE/$project" -B "$build" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$TMP/prefix-$kind"
    step "$project-$kind-build" cmake --build "$build"
    check "$project ($kind)" "$kind" "$build/$program"
}
cmake_consumer cmake-cxx static consumer-cxx

# add_subdirectory: ember built inside a parent project (which passes no build type: ember must not set it).
step cmake-subdir-configure cmake -S "$HERE/cmake-subdir" -B "$TMP/cmake-subdir" "${GENERATOR[@]}" -DEMBER_SOURCE_DIR="$ROOT"
step cmake-subdir-build cmake --build "$TMP/cmake-subdir" -j "$JOBS"
check "cmake-subdir (static)" static "$TMP/cmake-subdir/consumer-subdir"
cmake_consumer cmake-c static consumer-c
cmake_consumer cmake-c shared consumer-c   # CMake gives the program an RPATH to the prefix

# make + pkg-config: `make shared` against the shared prefix (run with LD_LIBRARY_PATH), `make static`
# (pkg-config --static) against the static one.
for kind in shared static; do
    pcdir=$(dirname "$(find "$TMP/prefix-$kind" -name ember.pc | head -n 1)")
    mkdir -p "$TMP/make-$kind"
    step "make-pkgconfig-$kind" env PKG_CONFIG_PATH="$pcdir" make -C "$HERE/make-pkgconfig" BUILD="$TMP/make-$kind" $kind
    LD_LIBRARY_PATH=$TMP/prefix-shared/$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
        check "make-pkgconfig ($kind)" "$kind" "$TMP/make-$kind/consumer-$kind"
done

# Conan 2: `conan create conan.py` with its test_package, static then shared, in a throwaway CONAN_HOME
# (never the user's ~/.conan2). Run outside the repository: its conan.py would shadow the conan package.
if ! (cd "$TMP" && PYTHONPATH=$PYDEPS python3 -c 'import conans' 2>/dev/null); then
    if [ "${EMBER_REQUIRE_FIXTURES:-0}" = 1 ]; then
        echo "consumers: conan is not importable from $PYDEPS (scripts/test.sh installs it)" >&2
        exit 1
    fi
    echo "consumers: conan part skipped: conan is not importable from $PYDEPS (scripts/test.sh installs it there)"
    exit 0
fi
export CONAN_HOME=$TMP/conan-home
conan() { (cd "$TMP" && PYTHONPATH=$PYDEPS${PYTHONPATH:+:$PYTHONPATH} python3 -m conans.conan "$@"); }
step conan-profile conan profile detect
# The test_package builds ../cmake-c/main.c: both are copied, so that nothing is written into the sources.
mkdir -p "$TMP/conan-test"
cp -r "$HERE/conan" "$HERE/cmake-c" "$TMP/conan-test/"
rm -rf "$TMP/conan-test/conan/build" "$TMP/conan-test/conan/CMakeUserPresets.json"
export EMBER_TEST_MODEL=$MODEL  # for the test_package
# With a CUDA toolkit, also the static package with the CUDA backend (cuda=True), whose users link the
# CUDA runtime it carries: the test_package links only if that works.
kinds="static shared"
command -v nvcc >/dev/null && kinds="$kinds static-cuda"
for kind in $kinds; do
    shared=False cuda=False
    [ $kind = shared ] && shared=True
    [ $kind = static-cuda ] && cuda=True
    step "conan-create-$kind" conan create "$ROOT/conan.py" \
        --test-folder "$TMP/conan-test/conan" -s compiler.cppstd=20 -s build_type=Release -o "ember/*:shared=$shared" \
        -o "ember/*:cuda=$cuda" "${CONAN_GENERATOR[@]}" -c tools.build:jobs="$JOBS"
    out=$TMP/logs/conan-create-$kind.log
    if ! grep -q '^Once upon a time.' "$out" || ! grep -Eq '^tokens: [1-9][0-9]*$' "$out"; then
        echo "consumers: conan's test_package ($kind) printed no generated text; the last lines of $out:" >&2
        tail -n 30 "$out" >&2
        exit 1
    fi
    echo "consumers: conan create conan.py ($kind), test_package: $(grep -m 1 '^Once upon a time' "$out")"
done
