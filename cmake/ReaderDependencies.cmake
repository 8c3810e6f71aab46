# What the file readers need (formats, images, configs, vocabularies): the library and the fuzz
# build (fuzz/) both include this. Debian's packages; static archives with TROCR_STATIC_DEPS.
find_package(Threads REQUIRED)
# TIFF (libtiff-dev), shared even with TROCR_STATIC_DEPS: its codecs pull in a dozen libraries.
find_package(TIFF REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
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
# GIF (libgif-dev): giflib's decoder.
find_path(GIF_INCLUDE_DIR gif_lib.h REQUIRED)
find_library(GIF_LIBRARY NAMES gif REQUIRED)
if(TROCR_STATIC_DEPS)
  set(CMAKE_FIND_LIBRARY_SUFFIXES ${_saved_suffixes})
endif()
