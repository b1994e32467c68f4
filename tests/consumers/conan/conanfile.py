# ember's Conan test_package (conan.py: test_package_folder): builds a C program over ember.h against the
# package just created, with CMakeDeps + CMakeToolchain, and runs it on a model: $EMBER_TEST_MODEL, else
# the repository's tests/data/models/stories260K.gguf. The C ABI works with the static and the shared package.
import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, cmake_layout


class EmberTestPackageConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps", "CMakeToolchain"
    test_type = "explicit"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def test(self):
        if not can_run(self):
            return
        model = os.environ.get("EMBER_TEST_MODEL") or os.path.join(
            self.source_folder, "..", "..", "data", "models", "stories260K.gguf")
        program = os.path.join(self.cpp.build.bindir, "test_package")
        self.run(f'"{program}" "{model}"', env="conanrun")
