"""The Recognizer: a checkpoint directory loaded once, images in, results out."""
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Iterator, List, Optional, Tuple

from trocr_rt import _core
from trocr_rt.images import engine_input

# HF generate()'s names that recognize() takes, applied on top of the checkpoint's settings.
GENERATION_NAMES = ("num_beams", "max_length", "max_new_tokens", "min_length", "no_repeat_ngram_size",
                    "length_penalty", "early_stopping", "num_return_sequences")


@dataclass(frozen=True)
class Candidate:
    """One decoded sequence. score: HF's sequences_scores for beam search (the length-penalised
    sum of log-probabilities); for greedy search the mean log-probability of the chosen tokens."""
    text: str
    ids: List[int]
    score: float
    mean_token_probability: float
    min_token_probability: float


@dataclass(frozen=True)
class Result:
    """What one image gave: the best candidate's fields, and every candidate (num_return_sequences
    of them, best first). confidence is the best candidate's mean token probability (as the CLI
    and the server report it). source is the path for recognize_files; box the four corners of
    the line on its page, for recognize(page, boxes=...)."""
    text: str
    confidence: float
    score: float
    mean_token_probability: float
    min_token_probability: float
    ids: List[int]
    candidates: List[Candidate] = field(repr=False)
    source: Optional[str] = None
    box: Optional[List[Tuple[float, float]]] = None


def _result(candidates, source=None, box=None):
    """A Result from the engine's candidate tuples (text, ids, score, mean, min), best first."""
    candidates = [Candidate(*candidate) for candidate in candidates]
    best = candidates[0]
    return Result(best.text, best.mean_token_probability, best.score, best.mean_token_probability,
                  best.min_token_probability, best.ids, candidates, source, box)


class Recognizer:
    """A TrOCR checkpoint directory (HF VisionEncoderDecoderModel: config.json, weights,
    vocabulary, preprocessor_config.json) ready to recognize text lines.

    device: "cpu", "cuda" or "cuda:N". dtype: "fp32" (the exact reference), "fp16" (CUDA),
    "bf16", or "fp8" (CUDA on Hopper or newer: fp16 with the encoder's products in E4M3, faster at
    large batches and further from HF's answers). batch_size: images run together. threads: CPU
    threads (0: one per physical core).

    Thread safety: any thread may call any method. The GIL is released while images are decoded
    and recognized, and one Recognizer runs one call at a time: concurrent calls wait for each
    other (each gets its own answers). To keep a GPU busy from several threads, pass more images
    per call, or make one Recognizer per thread.
    """

    def __init__(self, model_dir, device="cpu", dtype="fp32", batch_size=8, threads=0):
        self._engine = _core.Engine(os.fspath(model_dir), device, dtype, int(batch_size), int(threads))
        self.model_dir = os.fspath(model_dir)
        self.device = device
        self.dtype = dtype
        self.batch_size = int(batch_size)

    @property
    def config(self):
        """The architecture read from config.json (encoder and decoder shapes)."""
        return self._engine.model()

    @property
    def generation(self):
        """The checkpoint's generation settings as generate() resolves them (max_length with the
        start token, min_length, beams, ...), and the file they came from."""
        return self._engine.generation()

    def generation_settings(self, **overrides):
        """The settings recognize(**overrides) would use."""
        return self._engine.generation_with(_checked(overrides))

    def recognize(self, images, boxes=None, **overrides):
        """Text for each image. images: one image or a list of them; each a path, encoded bytes
        (PNG, JPEG, WebP, GIF, BMP, TIFF), a PIL.Image in any mode, or a numpy uint8 array HxW, HxWx3 or
        HxWx4. overrides: HF generate() names (GENERATION_NAMES). Returns a list of Result, or
        one Result when one image was passed.

        With boxes, images is one page and each box a text line on it, as detectors give them:
        four (x, y) corners clockwise from the line's top-left (PaddleOCR, docTR), eight numbers,
        an upright rectangle (x0, y0, x1, y1), or a dict with "points" (read as `trocr recognize
        --boxes` and the server read them; numpy arrays too). Each line is warped to an upright rectangle (and turned
        when 1.5 times taller than wide), and the results, one per box, carry their box."""
        if boxes is not None:
            lines, corners = _core.crop_boxes(engine_input(images, 0), boxes)
            return [_result(candidates, box=box)
                    for box, candidates in zip(corners, self._engine.recognize(lines, _checked(overrides)))]
        single = not isinstance(images, (list, tuple))
        items = [images] if single else list(images)
        inputs = [engine_input(image, i) for i, image in enumerate(items)]
        results = [_result(candidates) for candidates in self._engine.recognize(inputs, _checked(overrides))]
        return results[0] if single else results

    def recognize_files(self, paths, batch_size=None, **overrides) -> Iterator[Result]:
        """Streams results for many files, in order, batch_size paths per engine call (by
        default what the CLI reads per call: 4 batches, at least 64 images); the next ones are
        decoded while the engine reads these. paths: file paths, or folders, read recursively in sorted path order for the
        image extensions the CLI reads. Each Result carries its path as `source`."""
        chunk = int(batch_size or self._engine.images_per_call())
        if chunk < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        overrides = _checked(overrides)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trocr_rt-decode") as decoder:
            batches = _batched(_expand(paths), chunk)
            current = next(batches, None)
            pending = decoder.submit(_core.decode, current) if current else None
            while pending is not None:
                decoded = pending.result()
                following = next(batches, None)
                pending = decoder.submit(_core.decode, following) if following else None
                for path, candidates in zip(current, self._engine.recognize(decoded, overrides)):
                    yield _result(candidates, source=path)
                current = following

    def preprocess(self, image):
        """The float32 pixels [3, height, width] the model reads for one image: what HF's
        ViTImageProcessor gives for the same image."""
        return self._engine.preprocess(engine_input(image, 0))


def _checked(overrides):
    unknown = sorted(set(overrides) - set(GENERATION_NAMES))
    if unknown:
        raise TypeError(f"unexpected generation setting(s) {', '.join(unknown)}; "
                        f"known: {', '.join(GENERATION_NAMES)}")
    return {name: value for name, value in overrides.items() if value is not None}


def crop_lines(page, boxes):
    """The line images recognize(page, boxes=boxes) reads: HxWx3 uint8 arrays, one per box."""
    lines, _ = _core.crop_boxes(engine_input(page, 0), boxes)
    return list(lines.arrays())


def _batched(items, size):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _expand(paths) -> Iterable[str]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    for path in paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            found = []
            for root, _, files in os.walk(path):
                found.extend(os.path.join(root, name) for name in files if _core.has_image_extension(name))
            yield from sorted(found)
        else:
            yield path
