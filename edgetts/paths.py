"""Where edgetts keeps its files.

One root, ``~/.cache/edgetts`` unless ``EDGETTS_HOME`` says otherwise, so that tests, CI and
users with a read-only home can point the whole product somewhere else with one variable.
"""

import os
from pathlib import Path


def home() -> Path:
    """The root of everything edgetts writes (model store, profiles, caches)."""
    override = os.environ.get("EDGETTS_HOME")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "edgetts"


def models_dir() -> Path:
    """The model store: one sub-folder per converted model."""
    return home() / "models"
