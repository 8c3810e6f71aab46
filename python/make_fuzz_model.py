#!/usr/bin/python3
"""A tiny TrOCR checkpoint for the checkpoint fuzz targets: the vit-char test model's tensor
names at hidden size 8 and one layer each, so that a valid seed is a few KB and the fuzzer runs
many times faster than on vit-char's 236 KB. Writes fuzz/model/config.json and the seeds
fuzz/seeds/safetensors/tiny.safetensors and fuzz/seeds/torch_checkpoint/tiny.bin (the zip and
pickle layout torch.save writes, produced here without torch).

    /usr/bin/python3 python/make_fuzz_model.py
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "tests", "data", "models", "vit-char")
# vit-char's sizes and the tiny model's: hidden 32 -> 8, FFN 64 -> 16, vocabulary 52 -> 8,
# positions 64 (+2 offset) -> 16 (+2), image 40 -> 8 with patches 8 -> 4 (26 tokens -> 5).
SIZES = {32: 8, 64: 16, 52: 8, 66: 18, 26: 5}


def tiny_config():
    config = json.load(open(os.path.join(SOURCE, "config.json")))
    config["encoder"].update(hidden_size=8, intermediate_size=16, num_attention_heads=2, num_hidden_layers=1,
                             image_size=8, patch_size=4, encoder_stride=4, pooler_output_size=8)
    config["decoder"].update(d_model=8, decoder_ffn_dim=16, decoder_attention_heads=2, decoder_layers=1,
                             vocab_size=8, max_position_embeddings=16, cross_attention_hidden_size=None)
    return config


def tiny_tensors():
    with open(os.path.join(SOURCE, "model.safetensors"), "rb") as file:
        header = json.loads(file.read(struct.unpack("<Q", file.read(8))[0]))
    random = numpy.random.default_rng(0)
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__" or ".layers.1." in name or ".layer.1." in name:
            continue
        shape = [SIZES.get(extent, extent) for extent in entry["shape"]]
        if name.endswith("patch_embeddings.projection.weight"):
            shape = [8, 3, 4, 4]
        tensors[name] = random.standard_normal(shape).astype("<f4")
    return tensors


def write_safetensors(path, tensors):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, tensor in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + tensor.nbytes]}
        offset += tensor.nbytes
    encoded = json.dumps(header).encode()
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(encoded)) + encoded)
        for tensor in tensors.values():
            file.write(tensor.tobytes())


class Storage:
    def __init__(self, key, tensor):
        self.key, self.tensor = key, tensor


def torch_stubs():
    """Stand-ins that pickle under torch's names: torch._utils._rebuild_tensor_v2, torch.FloatStorage."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*arguments):
        raise AssertionError("only pickled, never called")
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    float_storage = type("FloatStorage", (), {"__module__": "torch"})
    utils._rebuild_tensor_v2, torch.FloatStorage, torch._utils = _rebuild_tensor_v2, float_storage, utils
    sys.modules.setdefault("torch", torch)
    sys.modules.setdefault("torch._utils", utils)
    return _rebuild_tensor_v2, float_storage


def write_torch_checkpoint(path, tensors):
    rebuild, float_storage = torch_stubs()

    class Tensor:
        def __init__(self, storage, shape):
            self.storage, self.shape = storage, shape

        def __reduce__(self):
            strides = tuple(int(numpy.prod(self.shape[i + 1:])) for i in range(len(self.shape)))
            return rebuild, (self.storage, 0, tuple(self.shape), strides, False, collections.OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, value):
            if isinstance(value, Storage):
                return ("storage", float_storage, value.key, "cpu", value.tensor.size)
            return None

    storages = {name: Storage(str(i), tensor) for i, (name, tensor) in enumerate(tensors.items())}
    data = io.BytesIO()
    Pickler(data, protocol=2).dump({name: Tensor(storages[name], list(t.shape)) for name, t in tensors.items()})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("tiny/data.pkl", data.getvalue())
        archive.writestr("tiny/byteorder", "little")
        for storage in storages.values():
            archive.writestr(f"tiny/data/{storage.key}", storage.tensor.tobytes())
        archive.writestr("tiny/version", "3\n")


def main():
    os.makedirs(os.path.join(ROOT, "fuzz", "model"), exist_ok=True)
    json.dump(tiny_config(), open(os.path.join(ROOT, "fuzz", "model", "config.json"), "w"), indent=1)
    tensors = tiny_tensors()
    write_safetensors(os.path.join(ROOT, "fuzz", "seeds", "safetensors", "tiny.safetensors"), tensors)
    write_torch_checkpoint(os.path.join(ROOT, "fuzz", "seeds", "torch_checkpoint", "tiny.bin"), tensors)
    print(len(tensors), "tensors,", sum(t.size for t in tensors.values()), "values")


if __name__ == "__main__":
    main()
