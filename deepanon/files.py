"""File helpers: the one-line input error, walking folders (and saying what is skipped), atomic writes, hashes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


class InputError(RuntimeError):
    """An input cannot be processed; the message is one line meant for the user."""


def walk_files(root: Path) -> Iterator[tuple[Path, str | None]]:
    """Files below ``root`` with None, and what is skipped with the reason (hidden files and folders, broken
    links); links to folders are followed, each real folder once, so a link loop ends."""
    seen: set[str] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        for d in subfolders:
            if d.startswith("."):
                yield Path(folder, d), "hidden folder"
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        for name in names:
            path = Path(folder, name)
            if name.startswith("."):
                yield path, "hidden file"
            elif os.path.isfile(path):
                yield path, None
            else:
                yield path, "broken link" if os.path.islink(path) else "not a regular file"


def publish(tmp: Path, path: Path) -> None:
    """Give a finished temporary file the usual permissions (0666 minus the umask; mkstemp makes 0600) and rename it
    onto ``path``."""
    os.chmod(tmp, 0o666 & ~current_umask())
    os.replace(tmp, path)


def current_umask() -> int:
    """The process's umask (reading it means setting it: set back at once)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def sha256_of(path: Path) -> str:
    """The file's sha256, hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def partial_files(path: Path) -> list[Path]:
    """The temporary files that ``atomic_write`` calls for ``path`` left behind (a process killed with SIGKILL cannot
    remove its own)."""
    path = Path(path)
    return sorted(path.parent.glob(f".{glob_escape(path.stem)}.*.partial{glob_escape(path.suffix)}"))


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temp_path)`` then rename onto ``path``; on any failure no file is left behind."""
    path = Path(path)
    tmp = None
    try:  # the temp file is made inside the try: a SIGTERM (SystemExit) right after it must still remove it
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".partial{path.suffix}")
        os.close(fd)
        write(Path(tmp))
        publish(Path(tmp), path)
    except BaseException:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise
