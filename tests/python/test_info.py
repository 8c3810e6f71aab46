"""Model information: config.json's architecture, the resolved generation settings, the version."""
import json
import os
import re

import trocr_rt
from conftest import MODEL, ROOT


def test_version_is_the_projects():
    cmake = open(os.path.join(ROOT, "CMakeLists.txt")).read()
    assert trocr_rt.__version__ == re.search(r"project\(trocr-rt VERSION (\S+)", cmake).group(1)


def test_config_is_config_json(recognizer):
    config = json.load(open(os.path.join(MODEL, "config.json")))
    ours = recognizer.config
    assert ours["encoder"]["hidden_size"] == config["encoder"]["hidden_size"]
    assert ours["encoder"]["num_layers"] == config["encoder"]["num_hidden_layers"]
    assert ours["encoder"]["image_size"] == (config["encoder"]["image_size"],) * 2
    assert ours["decoder"]["vocab_size"] == config["decoder"]["vocab_size"]
    assert ours["decoder"]["d_model"] == config["decoder"]["d_model"]
    assert ours["decoder"]["num_layers"] == config["decoder"]["decoder_layers"]


def test_generation_settings_resolve_as_generate_does(recognizer, golden):
    checkpoint = golden["generation_config"]
    settings = recognizer.generation
    assert settings["num_beams"] == checkpoint["num_beams"]
    assert settings["max_length"] == checkpoint["max_length"]
    assert settings["early_stopping"] == str(checkpoint["early_stopping"]).lower()
    assert settings["eos_token_id"] == checkpoint["eos_token_id"]
    # max_new_tokens counts after the start token and wins over max_length, as in HF.
    overridden = recognizer.generation_settings(max_new_tokens=5, max_length=50, num_beams=2, early_stopping="never")
    assert overridden["max_length"] == 6
    assert overridden["num_beams"] == 2 and overridden["early_stopping"] == "never"
    assert recognizer.generation == settings  # overrides leave the checkpoint's settings alone
