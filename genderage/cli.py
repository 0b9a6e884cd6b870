"""What every command line checks before its long work: output files it can write, and names close to a mistyped one."""

from __future__ import annotations

import difflib
import os
from pathlib import Path


def ensure_output_file(path: str | Path, option: str = "--output") -> Path:
    """Create `path`'s folder if needed and make sure a file can be written there, before any long work: a finished
    evaluation is never lost to a missing folder. Raises OSError with one line naming the option."""
    path = Path(path)
    if path.is_dir():
        raise OSError(f"{option} {path} is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"{option} {path}: cannot create its folder ({error.strerror or error})") from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OSError(f"{option} {path}: not writable")
    return path


def did_you_mean(wanted: str, candidates: list[str]) -> str:
    """'; did you mean X?' for the closest candidate, or nothing."""
    close = difflib.get_close_matches(wanted, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""
