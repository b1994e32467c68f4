# The CUDA backend (backends/cuda) is built where a working CUDA toolkit is found.
#   EMBER_CUDA=AUTO (default): build it when nvcc works (CI compiles it even without a GPU, so it never rots);
#              without a toolkit ember builds exactly as before.
#   EMBER_CUDA=ON: a missing toolkit is a configure error.  EMBER_CUDA=OFF: never.
# CMAKE_CUDA_ARCHITECTURES defaults to 90 (H100/H200); set it to build for other GPUs (e.g. "80;90").
# Included from the top-level CMakeLists.txt: enable_language must be called in the directory common to every
# target that links CUDA objects (libember, its tests and examples).
set(EMBER_CUDA AUTO CACHE STRING "Build the CUDA backend: AUTO (when a CUDA toolkit is found), ON or OFF")
set_property(CACHE EMBER_CUDA PROPERTY STRINGS AUTO ON OFF)
set(EMBER_WITH_CUDA OFF)
if(NOT EMBER_CUDA STREQUAL "OFF")
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  include(CheckLanguage)
  check_language(CUDA)  # runs nvcc on a test file: a toolkit that cannot compile counts as absent
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit)
    if(CUDAToolkit_FOUND AND TARGET CUDA::cudart_static)
      set(EMBER_WITH_CUDA ON)
    endif()
  endif()
  if(EMBER_WITH_CUDA)
    message(STATUS "ember: CUDA backend on (CUDA ${CUDAToolkit_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(EMBER_CUDA STREQUAL "ON")
    message(FATAL_ERROR "EMBER_CUDA=ON, but no working CUDA toolkit (nvcc and the CUDA runtime) was found")
  else()
    message(STATUS "ember: CUDA backend off (no CUDA toolkit found)")
  endif()
endif()
if(EMBER_WITH_CUDA AND EMBER_CCACHE AND NOT CMAKE_CUDA_COMPILER_LAUNCHER)
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${EMBER_CCACHE})  # ccache knows nvcc
endif()
if(EMBER_WITH_CUDA)
  set(_ember_backends "cpu cuda")
else()
  set(_ember_backends "cpu")
endif()
message(STATUS "ember: backends=${_ember_backends} shared=${BUILD_SHARED_LIBS} sanitize=${EMBER_SANITIZE}")
