# Install rules (EMBER_INSTALL, on by default for the top-level project): the library, its headers, a CMake
# package (find_package(ember CONFIG) -> ember::ember) and a pkg-config file (ember.pc).
include(CMakePackageConfigHelpers)

set(EMBER_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/ember CACHE STRING
  "Where emberConfig.cmake is installed (relative to the prefix)")
mark_as_advanced(EMBER_INSTALL_CMAKEDIR)

install(TARGETS ember EXPORT emberTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})  # the include folder is the target's INSTALL_INTERFACE
install(FILES ${PROJECT_SOURCE_DIR}/capi/ember.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ember DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(EXPORT emberTargets NAMESPACE ember:: FILE emberTargets.cmake DESTINATION ${EMBER_INSTALL_CMAKEDIR})
# emberConfig.cmake says how the library was built: a static libember needs the C++ runtime even in a C
# program (see the .in file).
if(BUILD_SHARED_LIBS)
  set(EMBER_CONFIG_SHARED ON)
else()
  set(EMBER_CONFIG_SHARED OFF)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/emberConfig.cmake.in
  ${PROJECT_BINARY_DIR}/emberConfig.cmake INSTALL_DESTINATION ${EMBER_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/emberConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/emberConfig.cmake ${PROJECT_BINARY_DIR}/emberConfigVersion.cmake
  DESTINATION ${EMBER_INSTALL_CMAKEDIR})

# ember.pc: relocatable (the prefix is found from the file's own folder) when the install dirs are relative.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(EMBER_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(EMBER_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(EMBER_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH _up "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  string(REGEX REPLACE "/$" "" _up "${_up}")
  set(EMBER_PC_PREFIX "\${pcfiledir}/${_up}")
  set(EMBER_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(EMBER_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
# Libs.private: what `pkg-config --static --libs ember` adds for a static link from C (capi/CMakeLists.txt).
set(EMBER_PC_LIBS_PRIVATE "")
foreach(lib ${EMBER_CXX_RUNTIME_LIBS})
  string(APPEND EMBER_PC_LIBS_PRIVATE "-l${lib} ")
endforeach()
string(APPEND EMBER_PC_LIBS_PRIVATE "-pthread")
if(EMBER_WITH_CUDA)  # the CUDA backend's runtime, linked statically (backends/cuda/CMakeLists.txt)
  string(APPEND EMBER_PC_LIBS_PRIVATE " -L${CUDAToolkit_LIBRARY_DIR} -lcudart_static -ldl -lrt")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/ember.pc.in ${PROJECT_BINARY_DIR}/ember.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ember.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
