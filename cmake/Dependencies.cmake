# Every dependency comes from Debian's packages (scripts/setup.sh installs them).
find_package(CLI11 REQUIRED)
include(${CMAKE_CURRENT_LIST_DIR}/ReaderDependencies.cmake)
# The CPU engine's matrix products: oneDNN (libdnnl-dev), on OpenMP threads that our own loops
# share. Debian ships it as a shared library only; scripts/device_build.sh carries it along.
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_library(DNNL_LIBRARY NAMES dnnl REQUIRED)
find_path(DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp REQUIRED)

# `trocr serve`: Boost.Beast (libboost-dev, headers only) for its HTTP layer, spdlog
# (libspdlog-dev, used header-only) for its access log, and cpp-httplib (libcpp-httplib-dev)
# for the `trocr load-test` client. Without them the CLI is built without serve.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(HTTPLIB QUIET IMPORTED_TARGET cpp-httplib)
endif()
find_package(Boost 1.74 QUIET)
find_path(SPDLOG_INCLUDE_DIR spdlog/spdlog.h)
if(HTTPLIB_FOUND AND Boost_FOUND AND SPDLOG_INCLUDE_DIR)
  set(TROCR_HAVE_SERVE ON)
else()
  set(TROCR_HAVE_SERVE OFF)
  message(STATUS "trocr serve is not built: it needs libboost-dev, libspdlog-dev and libcpp-httplib-dev")
endif()
