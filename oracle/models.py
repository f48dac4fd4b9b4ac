"""Is a model here, before anything relies on it? A diffusers directory, or a Hugging Face repo id in the local
cache (the daemon loads only local files). The answer says how to get a model that is missing.

    python -m oracle.models stabilityai/sd-turbo [more ...]   exits 1 with one line per model that is missing
"""

from __future__ import annotations

import sys
from pathlib import Path

PIPELINE_INDEX = "model_index.json"  # what every diffusers pipeline, directory or repo, has at its root


class ModelMissing(RuntimeError):
    """The model is not on this machine; the message says how to get it."""


def check_model(model: str) -> None:
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / PIPELINE_INDEX).is_file():
            raise ModelMissing(f"model directory {path} is not a diffusers pipeline (no {PIPELINE_INDEX}); "
                               "save one with pipeline.save_pretrained(...)")  # fmt: skip
        return
    if path.is_absolute() or model.startswith(".") or model.count("/") != 1:
        raise ModelMissing(f"model directory {model} does not exist (a Hugging Face model is named `org/name`)")
    if not _in_hf_cache(model):
        raise ModelMissing(
            f"model {model} is not in the local Hugging Face cache: on a machine with network access run "
            f"`huggingface-cli download {model}` and copy ~/.cache/huggingface to this machine, or set the "
            "tier's `model` to a diffusers directory (`make tiny-model` builds a random-weight one for tests)"
        )


def _in_hf_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, PIPELINE_INDEX)
    return isinstance(found, str)


def main(argv: list[str]) -> int:
    missing = 0
    for model in argv:
        try:
            check_model(model)
        except ModelMissing as exc:
            print(f"genim-oracle: {exc}", file=sys.stderr)
            missing += 1
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
