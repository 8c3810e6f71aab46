# Every dependency comes from Debian's packages (scripts/setup.sh installs them).
find_package(CLI11 REQUIRED)
include(${CMAKE_CURRENT_LIST_DIR}/ReaderDependencies.cmake)
# The CPU engine's matrix products: oneDNN (libdnnl-dev), on OpenMP threads that our own loops
# share. Debian ships it as a shared library only; scripts/device_build.sh carries it along.
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_library(DNNL_LIBRARY NAMES dnnl REQUIRED)
find_path(DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp REQUIRED)

# cpp-httplib (libcpp-httplib-dev) for `trocr serve`; without it the CLI is built without serve.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(HTTPLIB QUIET IMPORTED_TARGET cpp-httplib)
endif()
set(TROCR_HAVE_SERVE ${HTTPLIB_FOUND})
if(NOT TROCR_HAVE_SERVE)
  message(STATUS "cpp-httplib not found: trocr serve is not built (apt install libcpp-httplib-dev)")
endif()
