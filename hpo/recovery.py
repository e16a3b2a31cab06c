"""Results that could not be stored: kept in a local file, applied on the next start.

When the database stays unreachable after `Storage`'s retries, a finished
trial's outcome would be lost with the process. Instead it is written here,
one JSON file per result (written to a temporary name, then renamed: a file
is whole or absent), and the next `optimize` of that study on this machine
applies it before it starts anything (`Storage.store_recovered`). A file
whose trial no longer exists (the study was deleted) is renamed *.orphaned
and left for the user, with a warning.

The folder is $HPO_RECOVERY_DIR, else $XDG_STATE_HOME/hpo/recovery, else
~/.local/state/hpo/recovery. Files are keyed by a hash of the storage URL
(never the URL itself: it may hold a password) and the study name.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """A finished trial's result, as `Storage.finish_trial` would have stored it."""

    trial_id: int
    number: int
    state: str
    params: dict[str, Any]
    finished_at: float
    value: float | None = None
    error: str | None = None
    values: list[float] | None = None  # a study of several objectives'
    constraints: list[float] | None = None


def recovery_dir() -> Path:
    explicit = os.environ.get("HPO_RECOVERY_DIR")
    if explicit:
        return Path(explicit)
    state_home = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state_home) / "hpo" / "recovery"


def _key(storage_key: str, study: str) -> str:
    return hashlib.sha256(f"{storage_key}\n{study}".encode()).hexdigest()[:20]


def save(storage_key: str, study: str, outcome: Outcome) -> Path:
    """Write one outcome; return its file."""
    folder = recovery_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_key(storage_key, study)}-{outcome.number}-{uuid.uuid4().hex[:8]}.json"
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump({"study": study, **asdict(outcome)}, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    return path


def claim(storage_key: str, study: str) -> list[tuple[Path, Outcome]]:
    """Take the outcomes waiting for this storage and study, oldest trial first.

    Each file is renamed to a name of this process first (an atomic step):
    of several workers starting together, exactly one takes each file. The
    caller deletes a file once its outcome is stored.
    """
    folder = recovery_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"{_key(storage_key, study)}-*.json")):
        taken = path.with_suffix(f".{os.getpid()}.taken")
        try:
            os.replace(path, taken)
        except FileNotFoundError:
            continue  # another worker took it
        data = json.loads(taken.read_text(encoding="utf-8"))
        data.pop("study", None)
        found.append((taken, Outcome(**data)))
    return sorted(found, key=lambda item: item[1].number)


def set_aside(path: Path) -> Path:
    """Keep a file whose outcome cannot be stored (its trial is gone), out of the way."""
    orphan = path.with_suffix(".orphaned")
    os.replace(path, orphan)
    return orphan
