"""A missing model is named, with how to get it, before anything relies on it: the daemon's start-up (every
Generator load) and `make demo MODEL=...` before it deploys or mints."""

from __future__ import annotations

import subprocess

import pytest

from oracle.config import TierSettings
from oracle.generate import Generator, ModelLoadError
from oracle.models import ModelMissing, check_model
from tests.services import ROOT


def test_a_repo_id_missing_from_the_cache_says_how_to_download_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelMissing, match=r"huggingface-cli download stabilityai/sd-turbo"):
        check_model("stabilityai/sd-turbo")


def test_a_directory_that_is_missing_or_not_a_pipeline_is_named(tmp_path):
    with pytest.raises(ModelMissing, match="does not exist"):
        check_model(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelMissing, match=r"no model_index\.json"):
        check_model(str(tmp_path / "empty"))


def test_a_pipeline_directory_passes(tiny_model):
    check_model(str(tiny_model))


def test_the_daemons_load_fails_with_that_line(tmp_path):
    generator = Generator({0: TierSettings(model=str(tmp_path / "nowhere"))}, "cpu")
    with pytest.raises(ModelLoadError, match="does not exist"):
        generator.load(0)


def test_make_demo_checks_the_model_before_the_demo_deploys():
    dry = subprocess.run(["make", "-n", "demo", "MODEL=org/model"], cwd=ROOT, capture_output=True, text=True)
    lines = dry.stdout.splitlines()
    check = next(i for i, line in enumerate(lines) if 'oracle.models "org/model"' in line)
    assert check < next(i for i, line in enumerate(lines) if "scripts/demo.py" in line)
