#!/usr/bin/env bash
# Builds ember (warnings as errors) and runs every test. Installs and fetches what it needs first.
#   scripts/test.sh                 # the whole suite
#   scripts/test.sh -R gguf         # extra arguments go to ctest
source "$(dirname "$0")/common.sh"
ember_install_deps
ember_install_deps "$EMBER_TEST_PACKAGES"
ember_fetch_default_model
ember_fetch_gemma3
ember_fetch_large_vocabs
ember_fetch_test_python
ember_build -DEMBER_WERROR=ON -DEMBER_BUILD_TESTS=ON
cd "$BUILD" && ctest --output-on-failure -j "$(nproc)" "$@"
