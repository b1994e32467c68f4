# Warnings and sanitizers applied to ember's own targets (never to the system's). The compile options are for
# C and C++ sources only: nvcc takes other flags (backends/cuda/CMakeLists.txt sets the CUDA files' own).
add_library(ember_options INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(ember_options INTERFACE "$<$<COMPILE_LANGUAGE:C,CXX>:-Wall;-Wextra;-Wpedantic;-Wno-missing-field-initializers>")
  if(EMBER_WERROR)
    target_compile_options(ember_options INTERFACE $<$<COMPILE_LANGUAGE:C,CXX>:-Werror>)
  endif()
endif()
if(EMBER_SANITIZE)
  target_compile_options(ember_options INTERFACE
    "$<$<COMPILE_LANGUAGE:C,CXX>:-fsanitize=address,undefined;-fno-omit-frame-pointer;-fno-sanitize-recover=undefined>")
  target_link_options(ember_options INTERFACE -fsanitize=address,undefined)
endif()
if(EMBER_FUZZ)
  # Coverage for libFuzzer on every ember target; the fuzz executables add the driver.
  target_compile_options(ember_options INTERFACE
    "$<$<COMPILE_LANGUAGE:C,CXX>:-fsanitize=fuzzer-no-link,address,undefined;-fno-omit-frame-pointer>")
  target_link_options(ember_options INTERFACE -fsanitize=address,undefined)
endif()
