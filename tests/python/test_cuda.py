"""trocr_rt on a GPU: HF's answers in fp32 for every golden case (fp16 and the 400-line demo set:
scripts/device_python.sh). Skipped, and counted as skipped, without a GPU."""
import pytest
from PIL import Image

import trocr_rt
from conftest import MODEL, image_path
from test_goldens import CASES, unpadded


def cuda_recognizer(dtype):
    try:
        return trocr_rt.Recognizer(MODEL, device="cuda", dtype=dtype, batch_size=4)
    except trocr_rt.Error as error:
        if "no CUDA device" in str(error) or "no CUDA engine" in str(error):
            pytest.skip(str(error))
        raise


@pytest.fixture(scope="module")
def cuda_fp32():
    return cuda_recognizer("fp32")


@pytest.mark.parametrize("case", sorted(CASES))
def test_cuda_fp32_gives_hf_ids(cuda_fp32, golden, case):
    for name, record in golden["images"].items():
        hf = record["generate"][case]
        with Image.open(image_path(name)) as image:
            result = cuda_fp32.recognize(image, **CASES[case])
        for rank, candidate in enumerate(result.candidates):
            assert candidate.ids == unpadded(hf["ids"][rank], cuda_fp32), (case, name, rank)
            assert candidate.text == hf["text"][rank], (case, name, rank)


def test_cuda_recognize_files_matches_recognize(cuda_fp32, golden):
    paths = [image_path(name) for name in golden["images"]]
    streamed = list(cuda_fp32.recognize_files(paths, batch_size=4))
    assert [r.source for r in streamed] == paths
    assert [r.ids for r in streamed] == [r.ids for r in cuda_fp32.recognize(paths)]
