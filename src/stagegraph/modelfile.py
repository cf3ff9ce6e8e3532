"""The deployment folder's small JSON files, read back as pydantic models.

`.stagegraph/identity.json`, `state-location.json` and `state-move.json` are written by the
tool and read on every run; like everything in the folder they are untrusted input. Each is
read the same way: absent is None, unreadable or not the model is one line naming the file
and what to do, in the error class of the module that owns the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from stagegraph.errors import StagegraphError

Model = TypeVar("Model", bound=BaseModel)


def read_model(path: Path, model: type[Model], error: type[StagegraphError], invalid: str) -> Model | None:
    """`path` as a `model`; None when there is no such file. `invalid` says what the file
    should have been and how to recover, after the path."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror}); check its permissions") from None
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        raise error(f"{path}: {invalid}") from None
