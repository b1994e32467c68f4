#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine and runs ember's main job on the default model.
#   scripts/setup.sh            # install, fetch SmolLM2-135M-Instruct, build, run
source "$(dirname "$0")/common.sh"
ember_install_deps
ember_fetch_default_model
ember_build
"$BUILD/examples/ember-info" "$DEFAULT_MODEL"
echo
"$BUILD/examples/ember-generate" -m "$DEFAULT_MODEL" --chat -p "${EMBER_PROMPT:-Give me three tips for staying focused while studying.}" -n 200
