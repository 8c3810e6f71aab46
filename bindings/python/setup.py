"""Installs the trocr_rt package that the project's CMake build put together in
<build>/python/trocr_rt (the pybind11 module _core and the pure-Python files).

The build folder is $TROCR_BUILD_DIR (relative to the repository), by default build/ (what scripts/setup.sh
builds). When it holds no module yet, it is configured and built here (target trocr_python)."""
import glob
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as cmake:
        for line in cmake:
            if line.startswith("project(trocr-rt VERSION"):
                return line.split("VERSION")[1].split()[0]
    raise RuntimeError("no project version in CMakeLists.txt")


class CMakeModule(build_ext):
    """Copies _core from the CMake build (building it first when missing) instead of compiling."""

    def build_extension(self, extension):
        build_dir = os.path.join(ROOT, os.environ.get("TROCR_BUILD_DIR", "build"))  # relative: to the repository
        pattern = os.path.join(build_dir, "python", "trocr_rt", "_core*.so")
        if not glob.glob(pattern):
            subprocess.check_call(["cmake", "-S", ROOT, "-B", build_dir, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                                   f"-DPython_EXECUTABLE={sys.executable}"])
            subprocess.check_call(["cmake", "--build", build_dir, "--target", "trocr_python"])
        modules = glob.glob(pattern)
        if len(modules) != 1:
            raise RuntimeError(f"expected one trocr_rt module in {os.path.dirname(pattern)}, found {modules}")
        target = self.get_ext_fullpath(extension.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(modules[0], target)


setup(
    name="trocr_rt",
    version=project_version(),
    description="TrOCR inference with trocr-rt's C++/CUDA engine",
    packages=["trocr_rt"],
    package_dir={"trocr_rt": os.path.relpath(os.path.join(HERE, "trocr_rt"), HERE)},
    ext_modules=[Extension("trocr_rt._core", sources=[])],
    cmdclass={"build_ext": CMakeModule},
    python_requires=">=3.8",
    install_requires=["numpy"],
    zip_safe=False,
)
