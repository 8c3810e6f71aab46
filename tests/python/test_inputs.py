"""Every kind of image trocr_rt takes, converted as Pillow converts, and clear errors for the
rest."""
import io
import pathlib

import numpy
import pytest
from PIL import Image

import trocr_rt
from conftest import MODEL, image_path

# Every mode Pillow converts to RGB, made from one RGB line image.
MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "F"]


def line_image():
    return Image.open(image_path("line_rgb.png")).convert("RGB")


def in_mode(image, mode):
    if mode == "P":
        return image.quantize(colors=23)
    if mode == "PA":
        return image.convert("RGBA").quantize(colors=23).convert("PA")
    if mode == "I;16":  # Pillow makes 16-bit gray only from data
        return Image.fromarray(numpy.asarray(image.convert("L")).astype(numpy.uint16) * 257)
    return image.convert(mode)


@pytest.mark.parametrize("mode", MODES)
def test_pil_image_in_any_mode_reads_as_pillow_converts_it(recognizer, mode):
    image = in_mode(line_image(), mode)
    assert image.mode == mode
    expected = numpy.asarray(image.convert("RGB"))
    # The pixels the engine reads are Pillow's RGB conversion of that image, resized as HF resizes.
    reference = recognizer.preprocess(expected)
    assert numpy.array_equal(recognizer.preprocess(image), reference)
    assert recognizer.recognize(image).ids == recognizer.recognize(expected).ids


def test_numpy_arrays_read_as_pillow_reads_them(recognizer):
    rgba = numpy.asarray(line_image().convert("RGBA")).copy()
    rgba[::3, ::5, 3] = 17  # alpha is dropped, as Image.convert("RGB") drops it
    gray = numpy.asarray(line_image().convert("L"))
    cases = {
        "HxW": (gray, Image.fromarray(gray, "L")),
        "HxWx1": (gray[:, :, None], Image.fromarray(gray, "L")),
        "HxWx3": (rgba[:, :, :3], Image.fromarray(numpy.ascontiguousarray(rgba[:, :, :3]), "RGB")),
        "HxWx4": (rgba, Image.fromarray(rgba, "RGBA")),
        "strided": (rgba[:, ::2, :3], Image.fromarray(numpy.ascontiguousarray(rgba[:, ::2, :3]), "RGB")),
    }
    for label, (array, pil) in cases.items():
        assert numpy.array_equal(recognizer.preprocess(array), recognizer.preprocess(pil)), label


def test_paths_bytes_and_path_objects_agree(recognizer):
    path = image_path("wide.jpg")
    data = open(path, "rb").read()
    results = recognizer.recognize([path, pathlib.Path(path), data, bytearray(data), memoryview(data)])
    assert len({tuple(result.ids) for result in results}) == 1


def test_encoded_formats_pillow_writes_read_like_pillow_reads_them(recognizer):
    image = line_image()
    for format_name in ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"]:
        buffer = io.BytesIO()
        image.save(buffer, format=format_name, **({"lossless": True} if format_name == "WEBP" else {}))
        decoded = Image.open(io.BytesIO(buffer.getvalue()))
        assert numpy.array_equal(recognizer.preprocess(buffer.getvalue()), recognizer.preprocess(decoded)), format_name


def test_one_image_gives_one_result_and_a_list_gives_a_list(recognizer):
    single = recognizer.recognize(image_path("tiny.png"))
    assert isinstance(single, trocr_rt.Result)
    listed = recognizer.recognize([image_path("tiny.png")])
    assert isinstance(listed, list) and listed[0] == single
    assert recognizer.recognize([]) == []


def test_bad_inputs_raise_clear_python_errors(recognizer):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        recognizer.recognize("/nonexistent/missing.png")
    with pytest.raises(trocr_rt.Error, match="not a PNG, JPEG, WebP, GIF, BMP or TIFF"):
        recognizer.recognize(b"this is no image")
    with pytest.raises(ValueError, match="image 1"):  # trocr_rt.Error is a ValueError
        recognizer.recognize([image_path("tiny.png"), b"\x89PNG\r\n\x1a\n broken"])
    with pytest.raises(ValueError, match="uint8"):
        recognizer.recognize(numpy.zeros((8, 8, 3), dtype=numpy.float32))
    with pytest.raises(ValueError, match="shape"):
        recognizer.recognize(numpy.zeros((8, 8, 2), dtype=numpy.uint8))
    with pytest.raises(ValueError, match="empty"):
        recognizer.recognize(numpy.zeros((0, 8, 3), dtype=numpy.uint8))
    with pytest.raises(TypeError, match="int"):
        recognizer.recognize(42)


def test_bad_settings_raise_clear_python_errors(recognizer):
    with pytest.raises(TypeError, match="num_beam"):
        recognizer.recognize(image_path("tiny.png"), num_beam=4)
    with pytest.raises(ValueError, match="num_beams"):
        recognizer.recognize(image_path("tiny.png"), num_beams=0)
    with pytest.raises(ValueError, match="early_stopping"):
        recognizer.recognize(image_path("tiny.png"), num_beams=2, early_stopping="sometimes")
    with pytest.raises(ValueError, match="max_length"):
        recognizer.recognize(image_path("tiny.png"), max_length=100000)
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        trocr_rt.Recognizer("/tmp/no-such-model")
    with pytest.raises(trocr_rt.Error, match="device"):
        trocr_rt.Recognizer(MODEL, device="tpu")
    with pytest.raises(ValueError, match="batch size"):
        trocr_rt.Recognizer(MODEL, batch_size=0)
