# Dependencies come from the system (Debian packages or the machine's CUDA toolkit); nothing is vendored.
find_program(EMBER_CCACHE ccache)
if(EMBER_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_C_COMPILER_LAUNCHER ${EMBER_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${EMBER_CCACHE})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${EMBER_CCACHE})
endif()

find_package(Threads REQUIRED)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)

set(EMBER_HAVE_ONEDNN OFF)
if(EMBER_ONEDNN)
  find_package(dnnl QUIET)
  if(dnnl_FOUND)
    set(EMBER_HAVE_ONEDNN ON)
  else()
    message(STATUS "ember: oneDNN not found; the CPU backend uses its own kernels only")
  endif()
endif()

# CUDA is on when a toolkit is found, unless the user says otherwise.
find_package(CUDAToolkit QUIET)
if(CUDAToolkit_FOUND AND TARGET CUDA::cublasLt)
  set(_ember_cuda_default ON)
else()
  set(_ember_cuda_default OFF)
endif()
option(EMBER_CUDA "Build the CUDA backend" ${_ember_cuda_default})
if(EMBER_CUDA AND NOT CUDAToolkit_FOUND)
  message(FATAL_ERROR "EMBER_CUDA=ON but no CUDA toolkit was found (set CUDAToolkit_ROOT)")
endif()

if(EMBER_BUILD_TESTS)
  find_package(doctest REQUIRED)
endif()

message(STATUS "ember: oneDNN=${EMBER_HAVE_ONEDNN} CUDA=${EMBER_CUDA} shared=${BUILD_SHARED_LIBS} sanitize=${EMBER_SANITIZE}")
