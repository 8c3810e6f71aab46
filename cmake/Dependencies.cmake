# Every dependency comes from Debian's packages (scripts/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(fmt 9 REQUIRED)

if(TROCR_STATIC_DEPS)
  set(_saved_suffixes ${CMAKE_FIND_LIBRARY_SUFFIXES})
  set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
endif()
find_package(ZLIB REQUIRED)
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)
# WebP (libwebp-dev): the still-image decoder and the demuxer/animation decoder Pillow reads with.
find_path(WEBP_INCLUDE_DIR webp/demux.h REQUIRED)
find_library(WEBP_LIBRARY NAMES webp REQUIRED)
find_library(WEBPDEMUX_LIBRARY NAMES webpdemux REQUIRED)
if(TROCR_STATIC_DEPS)
  set(CMAKE_FIND_LIBRARY_SUFFIXES ${_saved_suffixes})
endif()
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
