"""trocr_rt against HF: the pixels of HF's ViTImageProcessorPil, and generate()'s ids, texts and
scores for every committed case, with the very keyword arguments HF was given."""
import ast
import os

import numpy
import pytest
from PIL import Image

import trocr_rt
from conftest import ROOT, image_path


def generate_cases():
    """make_goldens.py's GENERATE_CASES: the generate() kwargs each golden was made with."""
    source = open(os.path.join(ROOT, "python", "make_goldens.py")).read()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "GENERATE_CASES":
            return eval(compile(ast.Expression(node.value), "make_goldens.py", "eval"), {"dict": dict})
    raise AssertionError("GENERATE_CASES not found in make_goldens.py")


CASES = generate_cases()


def unpadded(ids, recognizer):
    """HF pads the shorter rows of a batch with pad_token_id; ours come without padding."""
    ids, pad = list(ids), recognizer.generation["pad_token_id"]
    while ids and ids[-1] == pad:
        ids.pop()
    return ids


def test_pixels_of_pil_images_are_hf_pixels(recognizer, golden, golden_tensors):
    for name in golden["images"]:
        expected = golden_tensors[f"{name}/pixel_values"]
        with Image.open(image_path(name)) as image:
            ours = recognizer.preprocess(image)
        assert ours.dtype == numpy.float32 and ours.shape == expected.shape, name
        assert numpy.abs(ours - expected).max() <= 1e-6, name
        # A path and the file's bytes go through the engine's own decoders: the same pixels.
        assert numpy.array_equal(recognizer.preprocess(image_path(name)), ours), name
        with open(image_path(name), "rb") as file:
            assert numpy.array_equal(recognizer.preprocess(file.read()), ours), name


@pytest.mark.parametrize("case", sorted(CASES) + ["checkpoint_default"])
def test_generate_cases_give_hf_ids_texts_and_scores(recognizer, golden, case):
    kwargs = CASES.get(case, {})
    for name, record in golden["images"].items():
        hf = record["generate"][case]
        with Image.open(image_path(name)) as image:
            result = recognizer.recognize(image, **kwargs)
        expected_count = kwargs.get("num_return_sequences", 1)
        assert len(result.candidates) == expected_count, (case, name)
        for rank, candidate in enumerate(result.candidates):
            assert candidate.ids == unpadded(hf["ids"][rank], recognizer), (case, name, rank)
            assert candidate.text == hf["text"][rank], (case, name, rank)
            if "sequences_scores" in hf:
                score = hf["sequences_scores"][rank]
                assert abs(candidate.score - score) <= 1e-5 * max(10.0, abs(score)), (case, name, rank)
        if "token_probs" in hf:
            probabilities = hf["token_probs"]
            assert result.mean_token_probability == pytest.approx(numpy.mean(probabilities), abs=1e-4)
            assert result.min_token_probability == pytest.approx(min(probabilities), abs=1e-4)
        assert result.text == result.candidates[0].text and result.ids == result.candidates[0].ids
        assert result.confidence == result.mean_token_probability


def test_batch_of_mixed_inputs_gives_hf_batch(recognizer, golden):
    names = list(golden["batch"]["images"])
    inputs = []
    for i, name in enumerate(names):  # every kind of input in one call
        path = image_path(name)
        if i % 3 == 0:
            inputs.append(path)
        elif i % 3 == 1:
            inputs.append(open(path, "rb").read())
        else:
            inputs.append(Image.open(path))
    for case in ("greedy", "beam4_chinese", "beam3_lp1_return2"):
        results = recognizer.recognize(inputs, **CASES[case])
        hf = golden["batch"][case]
        returned = CASES[case].get("num_return_sequences", 1)
        assert len(results) == len(names)
        for i, result in enumerate(results):
            assert len(result.candidates) == returned
            for rank, candidate in enumerate(result.candidates):
                row = i * returned + rank
                assert candidate.ids == unpadded(hf["ids"][row], recognizer), (case, i, rank)
                assert candidate.text == hf["text"][row], (case, i, rank)
