// JPEG through libjpeg-turbo with Pillow's settings (islow IDCT, fancy upsampling). A file
// that ends early is an error, as in Pillow; CMYK is read as Adobe-inverted and converted
// with Pillow's cmyk2rgb.
#include <csetjmp>
#include <cstddef>
#include <cstdio>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <jerror.h>

#include "common/check.h"
#include "image/decoders.h"

namespace trocr {
namespace {

struct JpegErrors {
  jpeg_error_mgr manager;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

void on_error(j_common_ptr info) {
  auto* errors = reinterpret_cast<JpegErrors*>(info->err);
  (*info->err->format_message)(info, errors->message);
  std::longjmp(errors->jump, 1);
}

void on_message(j_common_ptr info, int level) {
  auto* errors = reinterpret_cast<JpegErrors*>(info->err);
  if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) errors->truncated = true;
}

struct JpegReader {
  jpeg_decompress_struct info{};
  bool created = false;
  ~JpegReader() {
    if (created) jpeg_destroy_decompress(&info);
  }
};

void cmyk_to_rgb(const uint8_t* in, uint8_t* out, int width) {
  for (int x = 0; x < width; ++x, in += 4, out += 3) {
    // Adobe files store inverted ink (Pillow's CMYK;I raw mode).
    const uint8_t ink[4] = {uint8_t(255 - in[0]), uint8_t(255 - in[1]), uint8_t(255 - in[2]), uint8_t(255 - in[3])};
    cmyk_to_rgb_as_pillow(ink, out);
  }
}

}  // namespace

RgbImage decode_jpeg(const uint8_t* data, size_t size, const std::string& name,
                     const ImageLimits& limits) {
  JpegReader reader;
  JpegErrors errors{};
  std::vector<uint8_t> row;
  RgbImage image;
  reader.info.err = jpeg_std_error(&errors.manager);
  errors.manager.error_exit = on_error;
  errors.manager.emit_message = on_message;
  if (setjmp(errors.jump)) fail("{}: corrupt JPEG: {}", name, errors.message);
  jpeg_create_decompress(&reader.info);
  reader.created = true;
  jpeg_mem_src(&reader.info, data, static_cast<unsigned long>(size));
  jpeg_read_header(&reader.info, TRUE);
  check_image_size(name, reader.info.image_width, reader.info.image_height, limits);
  const J_COLOR_SPACE space = reader.info.jpeg_color_space;
  int channels;
  if (space == JCS_GRAYSCALE) {
    reader.info.out_color_space = JCS_GRAYSCALE;
    channels = 1;
  } else if (space == JCS_YCbCr || space == JCS_RGB) {
    reader.info.out_color_space = JCS_RGB;
    channels = 3;
  } else if (space == JCS_CMYK || space == JCS_YCCK) {
    reader.info.out_color_space = JCS_CMYK;
    channels = 4;
  } else {
    fail("{}: JPEG colour space {} with {} components is not supported", name,
         static_cast<int>(space), reader.info.num_components);
  }
  jpeg_start_decompress(&reader.info);
  image.width = static_cast<int>(reader.info.output_width);
  image.height = static_cast<int>(reader.info.output_height);
  image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
  row.resize(static_cast<size_t>(image.width) * channels);
  while (reader.info.output_scanline < reader.info.output_height) {
    uint8_t* out = image.pixels.data() +
                   static_cast<size_t>(reader.info.output_scanline) * image.width * 3;
    JSAMPROW rows[1] = {row.data()};
    jpeg_read_scanlines(&reader.info, rows, 1);
    if (channels == 3) {
      std::copy(row.begin(), row.end(), out);
    } else if (channels == 1) {
      for (int x = 0; x < image.width; ++x) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = row[x];
    } else {
      cmyk_to_rgb(row.data(), out, image.width);
    }
    if (errors.truncated) break;
  }
  if (errors.truncated) fail("{}: JPEG file is truncated", name);
  jpeg_finish_decompress(&reader.info);
  if (errors.truncated) fail("{}: JPEG file is truncated", name);
  return image;
}

}  // namespace trocr
