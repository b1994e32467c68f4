# Conan 2 recipe for ember. Dependencies come from the system, as in the CMake build (the library needs
# only threads, and nlohmann-json's headers to build); this recipe builds ember with CMake and packages the library, its headers, the CMake
# package and ember.pc. Its test_package is tests/consumers/conan (the top level of the repository is fixed).
#   conan create conan.py -s compiler.cppstd=20 [-o "ember/*:shared=True"] [-o "ember/*:cuda=True"]
# cuda=True builds the CUDA backend (backends/cuda), which needs the CUDA toolkit (nvcc and the CUDA runtime)
# on the build machine; CMAKE_CUDA_ARCHITECTURES defaults to 90 (H100/H200). The static package then also
# holds the toolkit's libcudart_static.a (redistributable), which its users link.
# The shared library exports the C ABI only (ember.h); the C++ API (<ember/ember.hpp>) needs the static one.
import os

from conan import ConanFile
from conan.tools.build import check_min_cppstd, stdcpp_library
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.errors import ConanInvalidConfiguration
from conan.tools.files import copy, rmdir


class EmberConan(ConanFile):
    name = "ember"
    version = "0.1.0"
    license = "MIT"
    description = "Embeddable LLM runtime with a stable C ABI"
    topics = ("llm", "gguf", "inference", "c-api")
    package_type = "library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"shared": [True, False], "fPIC": [True, False], "cuda": [True, False]}
    default_options = {"shared": False, "fPIC": True, "cuda": False}
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
        # ON: a missing toolkit fails the build, rather than quietly making a CPU-only package.
        tc.cache_variables["EMBER_CUDA"] = "ON" if self.options.cuda else "OFF"
        if self.options.cuda:
            # The toolchain's C++20 would otherwise carry over to CUDA in CMake's compiler check, and
            # CMake before 3.26 knows no CUDA 20 flags for nvcc (backends/cuda builds as CUDA 17).
            tc.variables["CMAKE_CUDA_STANDARD"] = "17"
        tc.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        for name in ("LICENSE", "LICENSE.txt", "LICENSE.md"):
            copy(self, name, self.source_folder, os.path.join(self.package_folder, "licenses"))
        CMake(self).install()
        if self.options.cuda and not self.options.shared:
            cudart = self._cudart_static()
            copy(self, os.path.basename(cudart), os.path.dirname(cudart), os.path.join(self.package_folder, "lib"))
        # Conan's generators (CMakeDeps, PkgConfigDeps) write their own from package_info().
        rmdir(self, os.path.join(self.package_folder, "lib", "cmake"))
        rmdir(self, os.path.join(self.package_folder, "lib", "pkgconfig"))

    def _cudart_static(self):
        # The CUDA runtime this build linked (FindCUDAToolkit's cache entry).
        with open(os.path.join(self.build_folder, "CMakeCache.txt")) as cache:
            for line in cache:
                if line.startswith("CUDA_cudart_static_LIBRARY:"):
                    return line.split("=", 1)[1].strip()
        raise ConanInvalidConfiguration("cuda=True, but the build found no libcudart_static.a")

    def package_info(self):
        self.cpp_info.libs = ["ember"]
        if self.options.cuda and not self.options.shared:
            self.cpp_info.libs.append("cudart_static")  # the shared library carries it inside
        self.cpp_info.set_property("cmake_file_name", "ember")
        self.cpp_info.set_property("cmake_target_name", "ember::ember")
        self.cpp_info.set_property("pkg_config_name", "ember")
        if self.settings.os in ("Linux", "FreeBSD"):
            self.cpp_info.system_libs = ["pthread", "m"]
            if self.options.cuda and not self.options.shared:
                self.cpp_info.system_libs += ["dl", "rt"]  # cudart_static loads the driver at run time
        if not self.options.shared:
            # A static libember is C++: a C program must link the C++ runtime.
            libcxx = stdcpp_library(self)
            if libcxx:
                self.cpp_info.system_libs.append(libcxx)
