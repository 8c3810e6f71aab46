"""Images from Python objects, reduced to what the engine reads: a path (str), encoded bytes, or
an HxWx3 uint8 RGB array. Conversions to RGB are Pillow's own (Image.convert("RGB")), which is
what HF's TrOCR processor sees; numpy arrays are read as Pillow reads the same array."""
import os

import numpy

try:  # Pillow is optional: without it, PIL images cannot be passed (nothing else needs it)
    from PIL import Image as _PilImage
except ImportError:  # pragma: no cover - Debian's python3-pil is installed by scripts/setup.sh
    _PilImage = None


def engine_input(image, index):
    """One image as the engine takes it; `index` names it in errors."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if _PilImage is not None and isinstance(image, _PilImage.Image):
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        return numpy.ascontiguousarray(numpy.asarray(rgb, dtype=numpy.uint8))
    if isinstance(image, numpy.ndarray):
        return _rgb_array(image, index)
    raise TypeError(f"image {index}: expected a path, bytes, a PIL.Image or a numpy uint8 array, "
                    f"got {type(image).__name__}")


def _rgb_array(array, index):
    """HxW (gray), HxWx1, HxWx3 (RGB) or HxWx4 (RGBA) uint8, converted to RGB as Pillow converts
    modes L and RGBA: gray replicated into the three channels, alpha dropped."""
    if array.dtype != numpy.uint8:
        raise ValueError(f"image {index}: expected a uint8 array, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        array = numpy.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"image {index}: expected shape HxW, HxWx3 or HxWx4, got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"image {index}: empty array of shape {array.shape}")
    return numpy.ascontiguousarray(array[:, :, :3])
