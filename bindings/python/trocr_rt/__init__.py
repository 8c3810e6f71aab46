"""trocr-rt for Python: TrOCR checkpoints turned into text by trocr-rt's C++/CUDA engine.

    import trocr_rt
    recognizer = trocr_rt.Recognizer("models/demo", device="cuda", dtype="fp16")
    for result in recognizer.recognize(["line.png", PIL.Image.open("other.jpg")], num_beams=4):
        print(result.text, result.confidence)
"""
from trocr_rt._core import Error, __version__
from trocr_rt.recognizer import GENERATION_NAMES, Candidate, Recognizer, Result, crop_lines

__all__ = ["Candidate", "Error", "GENERATION_NAMES", "Recognizer", "Result", "crop_lines", "__version__"]
