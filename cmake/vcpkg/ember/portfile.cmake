# vcpkg overlay port for ember, kept in ember's repository:
#   vcpkg install ember --overlay-ports=cmake/vcpkg            (classic mode)
#   vcpkg install --overlay-ports=cmake/vcpkg                  (manifest mode, "ember" in your vcpkg.json)
# The sources are this repository (the port sits in its cmake/vcpkg/ember), or the tree named by the
# environment variable VCPKG_EMBER_SOURCE (add it to VCPKG_KEEP_ENV_VARS where vcpkg cleans the environment).
# ember is not published anywhere vcpkg_from_github could reach; once it is, replace this with, e.g.:
#   vcpkg_from_git(OUT_SOURCE_PATH SOURCE_PATH URL <ember's git URL> REF <commit sha> HEAD_REF main)
if(DEFINED ENV{VCPKG_EMBER_SOURCE})
    file(TO_CMAKE_PATH "$ENV{VCPKG_EMBER_SOURCE}" SOURCE_PATH)
else()
    get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
endif()
if(NOT EXISTS "${SOURCE_PATH}/capi/ember.h")
    message(FATAL_ERROR "ember's sources are not at ${SOURCE_PATH}: set VCPKG_EMBER_SOURCE to ember's repository")
endif()

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
    FEATURES
        tools EMBER_BUILD_EXAMPLES
)
# ember[cuda]: the CUDA backend (backends/cuda), which needs the CUDA toolkit (nvcc, the CUDA runtime) on
# the build machine, found by CMake as usual (CUDACXX or nvcc on PATH, e.g. /usr/local/cuda/bin). Without
# the feature the backend is not built even where a toolkit is. CMAKE_CUDA_ARCHITECTURES defaults to 90
# (H100/H200); set it in a triplet (VCPKG_CMAKE_CONFIGURE_OPTIONS) for other GPUs.
if("cuda" IN_LIST FEATURES)
    list(APPEND FEATURE_OPTIONS -DEMBER_CUDA=ON)
else()
    list(APPEND FEATURE_OPTIONS -DEMBER_CUDA=OFF)
endif()

# BUILD_SHARED_LIBS follows VCPKG_LIBRARY_LINKAGE. A shared libember exports the C ABI only (ember.h).
vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        ${FEATURE_OPTIONS}
        -DEMBER_BUILD_TESTS=OFF
        -DEMBER_INSTALL=ON
        -DEMBER_WERROR=OFF
)
vcpkg_cmake_install()
vcpkg_copy_pdbs()

vcpkg_cmake_config_fixup(PACKAGE_NAME ember CONFIG_PATH lib/cmake/ember)
vcpkg_fixup_pkgconfig()

if("tools" IN_LIST FEATURES)
    vcpkg_copy_tools(
        TOOL_NAMES ember-info ember-generate ember-generate-c ember-bench ember-tokenize ember-template
                   ember-chat ember-server ember-quantize ember-convert ember-make-model
        AUTO_CLEAN
    )
endif()

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug/include" "${CURRENT_PACKAGES_DIR}/debug/share")

# The repository has no license file yet; conan.py and vcpkg.json declare MIT.
if(EXISTS "${SOURCE_PATH}/LICENSE")
    vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
else()
    file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright"
        "ember is distributed under the MIT license (declared in its conan.py and vcpkg.json; the repository has no LICENSE file yet).\n")
endif()
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
