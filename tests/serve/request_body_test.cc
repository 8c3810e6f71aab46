// The server's body readers against hand-written inputs: base64 (RFC 4648's test vectors) and
// multipart/form-data (RFC 7578), with their errors.
#include "serve/base64.h"
#include "serve/multipart.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

TEST(Base64, DecodesTheRfc4648VectorsAndEncodesThemBack) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},         {"f", "Zg=="},     {"fo", "Zm8="},
                                                         {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(decode_base64(encoded, "v"), plain) << encoded;
    EXPECT_EQ(encode_base64(plain), encoded) << plain;
  }
}

TEST(Base64, TakesUnpaddedUrlSafeWrappedAndDataUrlForms) {
  EXPECT_EQ(decode_base64("Zm9vYg", "v"), "foob");
  EXPECT_EQ(decode_base64("Zm9v\r\nYmFy", "v"), "foobar");
  EXPECT_EQ(decode_base64("data:image/png;base64,Zm9v", "v"), "foo");
  EXPECT_EQ(decode_base64("-_8=", "v"), std::string("\xfb\xff", 2));
  EXPECT_EQ(decode_base64("+/8=", "v"), std::string("\xfb\xff", 2));
}

TEST(Base64, RefusesWithTheFaultsPosition) {
  EXPECT_ERROR_CONTAINS(decode_base64("Zm9v*mFy", "images[3]"), "images[3]: not base64 (character '*' at offset 4)");
  EXPECT_ERROR_CONTAINS(decode_base64("Zm9vY", "v"), "lone character");
  EXPECT_ERROR_CONTAINS(decode_base64("Zg=", "v"), "wrong padding");
  EXPECT_ERROR_CONTAINS(decode_base64("Zg==Zg==", "v"), "character 'Z' at offset 4");
  EXPECT_ERROR_CONTAINS(decode_base64(std::string("Zm\x01v", 4), "v"), "character 0x01 at offset 2");
}

TEST(Multipart, ReadsPartsInUploadOrderWithNamesAndFilenames) {
  const std::string body =
      "preamble\r\n--b0\r\nContent-Disposition: form-data; name=\"z\"; filename=\"second.png\"\r\n"
      "Content-Type: image/png\r\n\r\nPNG\r\nbytes\r\n--b0\r\ncontent-disposition: form-data; name=a\r\n\r\n"
      "{\"x\": 1}\r\n--b0--\r\nepilogue";
  const auto parts = parse_multipart(body, "multipart/form-data; boundary=\"b0\"", 10);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "z");
  EXPECT_EQ(parts[0].filename, "second.png");
  EXPECT_EQ(parts[0].content, "PNG\r\nbytes");
  EXPECT_EQ(parts[1].name, "a");
  EXPECT_EQ(parts[1].filename, "");
  EXPECT_EQ(parts[1].content, "{\"x\": 1}");
}

TEST(Multipart, RefusesMalformedBodies) {
  const std::string type = "multipart/form-data; boundary=b";
  EXPECT_ERROR_CONTAINS(parse_multipart("--b\r\n", "multipart/form-data", 10), "no usable boundary");
  EXPECT_ERROR_CONTAINS(parse_multipart("no delimiter", type, 10), "no part");
  EXPECT_ERROR_CONTAINS(parse_multipart("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nabc", type, 10),
                        "no closing delimiter");
  EXPECT_ERROR_CONTAINS(parse_multipart("--b\r\nX: y\r\n\r\nabc\r\n--b--", type, 10), "no Content-Disposition");
  EXPECT_ERROR_CONTAINS(parse_multipart("--b\r\nbroken\r\n\r\nabc\r\n--b--", type, 10), "without ':'");
  EXPECT_ERROR_CONTAINS(parse_multipart("--bX\r\n", type, 10), "does not end in CRLF");
  const std::string two = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b\r\n"
                          "Content-Disposition: form-data; name=b\r\n\r\n2\r\n--b--";
  EXPECT_ERROR_CONTAINS(parse_multipart(two, type, 1), "more than 1 parts");
}

TEST(Multipart, ReadsHeaderParametersQuotedOrNot) {
  EXPECT_EQ(header_parameter("form-data; name=\"a;b\"; filename=\"x\\\"y.png\"", "filename"), "x\"y.png");
  EXPECT_EQ(header_parameter("form-data; name=\"a;b\"; filename=x", "name"), "a;b");
  EXPECT_EQ(header_parameter("multipart/form-data; BOUNDARY=abc", "boundary"), "abc");
  EXPECT_EQ(header_parameter("form-data", "name"), "");
  EXPECT_EQ(media_type(" Multipart/Form-Data ; boundary=x"), "multipart/form-data");
}

}  // namespace
}  // namespace trocr::test
