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
set(BLA_VENDOR OpenBLAS)
if(TROCR_STATIC_DEPS)
  set(BLA_STATIC ON)
endif()
find_package(BLAS REQUIRED)
if(TROCR_STATIC_DEPS)
  set(CMAKE_FIND_LIBRARY_SUFFIXES ${_saved_suffixes})
  # Debian's static OpenBLAS is built with gfortran; its runtime goes in statically too.
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libgfortran.a
                  OUTPUT_VARIABLE GFORTRAN_LIBRARY OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libquadmath.a
                  OUTPUT_VARIABLE QUADMATH_LIBRARY OUTPUT_STRIP_TRAILING_WHITESPACE)
  list(APPEND BLAS_LIBRARIES ${GFORTRAN_LIBRARY} ${QUADMATH_LIBRARY} m)
endif()
find_path(CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas REQUIRED)

# cpp-httplib (libcpp-httplib-dev) for `trocr serve`; without it the CLI is built without serve.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(HTTPLIB QUIET IMPORTED_TARGET cpp-httplib)
endif()
set(TROCR_HAVE_SERVE ${HTTPLIB_FOUND})
if(NOT TROCR_HAVE_SERVE)
  message(STATUS "cpp-httplib not found: trocr serve is not built (apt install libcpp-httplib-dev)")
endif()
