# Dependencies come from the system (Debian packages); nothing is vendored. Only what the build uses is
# looked for: oneDNN and Eigen join when code that uses them lands (the CPU speed issue), together with the
# packages scripts/common.sh installs for them. The CUDA toolkit is looked for in cmake/EmberCuda.cmake.
find_program(EMBER_CCACHE ccache)
if(EMBER_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_C_COMPILER_LAUNCHER ${EMBER_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${EMBER_CCACHE})
endif()

find_package(Threads REQUIRED)
# nlohmann-json's headers, at build time only: the safetensors reader parses its JSON header with them
# (lib/safetensors). Nothing of it reaches ember's users.
find_package(nlohmann_json 3.10 CONFIG REQUIRED)

# Tests and examples may use more than the core: doctest, command lines (CLI11) and an HTTP client
# (libcurl) for ember-eval, an HTTP server (cpp-httplib) for ember-server.
if(EMBER_BUILD_TESTS)
  find_package(doctest REQUIRED)
endif()
if(EMBER_BUILD_EXAMPLES)
  find_package(CLI11 CONFIG REQUIRED)
  find_package(CURL REQUIRED)
  # cpp-httplib, for ember-server: examples/CMakeLists.txt (its CMake package, else pkg-config).
endif()

