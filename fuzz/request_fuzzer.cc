// The server's request readers: multipart, JSON with base64 images, KServe v2 inference
// requests and raw image bodies, through to the decoded (and, with boxes, cut) images and the
// request's generation settings. Input: a mode byte (0 /v1/recognize, 1 KServe infer), the
// Content-Type up to the first newline, then the body. Also checks that base64 round-trips.
#include <cstring>

#include "fuzz_support.h"
#include "model/generation_overrides.h"
#include "serve/base64.h"
#include "serve/recognize_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool kserve = data[0] & 1;
  const std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t newline = input.find('\n');
  const std::string content_type = input.substr(0, newline);
  const std::string body = newline == std::string::npos ? std::string() : input.substr(newline + 1);

  const std::string bytes(input.substr(0, 64));
  if (trocr::decode_base64(trocr::encode_base64(bytes), "round trip") != bytes) std::abort();

  trocr::fuzz::expect_answer_or_error([&] {
    const trocr::RecognizeRequest request =
        kserve ? trocr::parse_kserve_request(body, 8) : trocr::parse_recognize_request(content_type, body, 8);
    trocr::apply_generation_overrides(trocr::GenerationConfig{}, request.parameters, "parameters");
    trocr::ImageLimits limits;
    limits.max_pixels = 1 << 20;
    trocr::decode_request_images(request, 8, limits);
  });
  return 0;
}
