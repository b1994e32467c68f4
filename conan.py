# Conan 2 recipe for ember. Dependencies come from the system (Debian packages), as in the CMake build;
# this recipe builds ember with CMake and exposes the `ember` library and its headers.
#   conan create . --build=missing     (or: conan create conan.py)
from conan import ConanFile
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout


class EmberConan(ConanFile):
    name = "ember"
    version = "0.1.0"
    license = "MIT"
    description = "Embeddable LLM runtime with a stable C ABI"
    settings = "os", "arch", "compiler", "build_type"
    options = {"shared": [True, False]}
    default_options = {"shared": False}
    exports_sources = "CMakeLists.txt", "cmake/*", "include/*", "lib/*", "capi/*", "backends/*"

    def layout(self):
        cmake_layout(self)

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["BUILD_SHARED_LIBS"] = bool(self.options.shared)
        tc.cache_variables["EMBER_BUILD_TESTS"] = False
        tc.cache_variables["EMBER_BUILD_EXAMPLES"] = False
        tc.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        CMake(self).install()

    def package_info(self):
        self.cpp_info.libs = ["ember"]
        self.cpp_info.set_property("cmake_file_name", "ember")
        self.cpp_info.set_property("cmake_target_name", "ember::ember")
        self.cpp_info.set_property("pkg_config_name", "ember")
        if self.settings.os == "Linux":
            self.cpp_info.system_libs = ["pthread", "m"]
