# Conan 2 recipe for ember. Dependencies come from the system, as in the CMake build (the library needs
# only threads, and nlohmann-json's headers to build); this recipe builds ember with CMake and packages the library, its headers, the CMake
# package and ember.pc. Its test_package is tests/consumers/conan (the top level of the repository is fixed).
#   conan create conan.py -s compiler.cppstd=20 [-o "ember/*:shared=True"]
# The shared library exports the C ABI only (ember.h); the C++ API (<ember/ember.hpp>) needs the static one.
import os

from conan import ConanFile
from conan.tools.build import check_min_cppstd, stdcpp_library
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import copy, rmdir


class EmberConan(ConanFile):
    name = "ember"
    version = "0.1.0"
    license = "MIT"
    description = "Embeddable LLM runtime with a stable C ABI"
    topics = ("llm", "gguf", "inference", "c-api")
    package_type = "library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"shared": [True, False], "fPIC": [True, False]}
    default_options = {"shared": False, "fPIC": True}
    exports_sources = "CMakeLists.txt", "cmake/*", "include/*", "lib/*", "capi/*", "backends/*"
    test_package_folder = "tests/consumers/conan"

    def config_options(self):
        if self.settings.os == "Windows":
            del self.options.fPIC

    def configure(self):
        if self.options.shared:
            self.options.rm_safe("fPIC")

    def layout(self):
        cmake_layout(self)

    def validate(self):
        check_min_cppstd(self, "20")

    def generate(self):
        tc = CMakeToolchain(self)  # BUILD_SHARED_LIBS and CMAKE_POSITION_INDEPENDENT_CODE from the options
        tc.cache_variables["EMBER_BUILD_TESTS"] = False
        tc.cache_variables["EMBER_BUILD_EXAMPLES"] = False
        tc.cache_variables["EMBER_INSTALL"] = True
        # No CUDA option in this recipe yet: the package is the CPU build wherever it is made (its
        # package_info declares no CUDA runtime). vcpkg's ember[cuda] builds the CUDA backend.
        tc.cache_variables["EMBER_CUDA"] = "OFF"
        tc.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        for name in ("LICENSE", "LICENSE.txt", "LICENSE.md"):
            copy(self, name, self.source_folder, os.path.join(self.package_folder, "licenses"))
        CMake(self).install()
        # Conan's generators (CMakeDeps, PkgConfigDeps) write their own from package_info().
        rmdir(self, os.path.join(self.package_folder, "lib", "cmake"))
        rmdir(self, os.path.join(self.package_folder, "lib", "pkgconfig"))

    def package_info(self):
        self.cpp_info.libs = ["ember"]
        self.cpp_info.set_property("cmake_file_name", "ember")
        self.cpp_info.set_property("cmake_target_name", "ember::ember")
        self.cpp_info.set_property("pkg_config_name", "ember")
        if self.settings.os in ("Linux", "FreeBSD"):
            self.cpp_info.system_libs = ["pthread", "m"]
        if not self.options.shared:
            # A static libember is C++: a C program must link the C++ runtime.
            libcxx = stdcpp_library(self)
            if libcxx:
                self.cpp_info.system_libs.append(libcxx)
