"""Writing results: refuse an output that cannot be written before any work, and write files whole (temporary file +
rename), so a killed run never leaves a half-written file."""

import json
import os
import tempfile
from pathlib import Path


def unwritable_reason(path) -> str | None:
    """Why files cannot be created at `path` (a folder to create or fill), or None: the nearest existing folder on the
    way must be a writable folder (checked before anything runs, so a long job never fails at its last write)."""
    path = Path(path).expanduser().absolute()
    existing = next(folder for folder in [path, *path.parents] if folder.exists() or folder.is_symlink())
    if not existing.is_dir():
        return f"{existing} is a file, not a folder." if existing != path else f"{path} is a file."
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable."
    return None


def write_json(path, payload):
    """JSON written atomically (temporary file + rename): never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(json.dumps(payload, indent=2, default=float) + "\n")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
