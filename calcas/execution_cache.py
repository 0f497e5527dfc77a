"""The runner's execution cache: a step's executed notebook and output files, kept under a key
of everything the step's results depend on, so that an unchanged step is not run again.

A key (:func:`step_key`) is the SHA-256 of

* the notebook's code cells (source and tags, in order; Markdown cells are left out, so a
  prose edit re-uses the outputs),
* the profile and the step's parameters,
* the content of what the step reads: the output files of the steps it depends on
  (:func:`folder_digest`) and, for the step that converts them, the public data files,
* the calcas source (every ``*.py`` of the package and its ``data/`` files,
  :func:`source_digest`) and the installed distributions (:func:`environment_digest`).

An entry is a folder ``<cache>/<key>/`` holding ``executed.ipynb`` (papermill's output, before
:func:`calcas.run.finish_chapter`), ``files/`` (every other file the step left in its folder)
and ``entry.json``, which lists each file's SHA-256. An entry is written in a temporary folder
and renamed into place once complete; :func:`load_entry` re-checks every hash and discards an
entry that does not match (a partial copy, a changed byte, a missing or extra file), so a
damaged entry is run again, never trusted. :func:`prune` keeps the few most recently used
entries of each step.

On a hit the page is rebuilt from the cached outputs and the *current* notebook's Markdown
cells (:func:`assemble_notebook`), so a prose change shows without running any code.
"""
from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

#: Bumped when the key or the entry layout changes, so that old entries are never read.
CACHE_FORMAT = 1
ENTRY_FILE = "entry.json"
EXECUTED_FILE = "executed.ipynb"
FILES_FOLDER = "files"
#: Entries kept per step (the most recently used): enough to go back and forth between a few
#: versions of a parameter or a file without the cache growing with every edit.
KEEP_PER_STEP = 3


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def json_digest(value: Any) -> str:
    """SHA-256 of a JSON-serialisable value, independent of dict order."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def file_hashes(folder: str | os.PathLike, *, skip: str | None = None) -> dict[str, str]:
    """SHA-256 of every regular file under ``folder``, by POSIX path relative to it.

    Parameters
    ----------
    folder : path
        A folder; a missing one has no files.
    skip : str, optional
        A relative path left out (a step's executed notebook, which holds timings).

    Returns
    -------
    dict
        Relative path -> SHA-256, sorted by path.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not path.is_symlink() and rel != skip:
            found[rel] = file_sha256(path)
    return found


def folder_digest(folder: str | os.PathLike, *, skip: str | None = None) -> str:
    """One SHA-256 of the names and contents of every file under ``folder`` (but ``skip``):
    what a later step reads of an earlier step's outputs."""
    return json_digest(file_hashes(folder, skip=skip))


def source_digest(package_dir: str | os.PathLike) -> str:
    """SHA-256 of the calcas source a notebook imports: every ``*.py`` under ``package_dir``
    and every file of its ``data/`` folder, by relative path and content."""
    package_dir = Path(package_dir)
    files = [p for p in package_dir.rglob("*.py") if "__pycache__" not in p.parts]
    data = package_dir / "data"
    files += [p for p in data.rglob("*") if p.is_file()] if data.is_dir() else []
    return json_digest({p.relative_to(package_dir).as_posix(): file_sha256(p) for p in sorted(set(files))})


def environment_digest() -> str:
    """SHA-256 of the Python version and every installed distribution's name and version:
    an upgraded numpy or torch may change a number, so it runs the steps again."""
    dists = sorted({f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()
                    if d.metadata["Name"]})
    return json_digest({"python": sys.version, "distributions": dists})


def notebook_code(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The code cells of a notebook, in order, as the key sees them: source and tags."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return [{"source": _text(cell.get("source", "")), "tags": list(cell.get("metadata", {}).get("tags", []))}
            for cell in nb.get("cells", []) if cell.get("cell_type") == "code"]


def _text(source: str | list[str]) -> str:
    return "".join(source) if isinstance(source, list) else source


def step_key(*, notebook: str | os.PathLike, profile: str, params: dict[str, Any], inputs: dict[str, str],
             source: str, environment: str) -> str:
    """The cache key of one step.

    Parameters
    ----------
    notebook : path
        The notebook the step runs (only its code cells count).
    profile : str
        The runner's profile.
    params : dict
        The parameters papermill injects (JSON values).
    inputs : dict
        What the step reads, by name (an earlier step's folder, or the public data) -> the
        digest of its content.
    source, environment : str
        :func:`source_digest` and :func:`environment_digest`.

    Returns
    -------
    str
        64 hex digits.
    """
    return json_digest({"format": CACHE_FORMAT, "code": notebook_code(notebook), "profile": profile,
                        "params": params, "inputs": inputs, "source": source, "environment": environment})


def store_entry(cache_dir: str | os.PathLike, key: str, executed: str | os.PathLike,
                folder: str | os.PathLike, *, info: dict[str, Any] | None = None) -> Path:
    """Keep a step's outputs under ``key``: the executed notebook and every other file in its
    folder. Written to a temporary folder first and renamed, so a reader never sees half an
    entry; an existing entry of the same key is replaced.

    Parameters
    ----------
    cache_dir : path
        The cache's folder (created when missing).
    key : str
        From :func:`step_key`.
    executed : path
        Papermill's output notebook.
    folder : path
        The step's folder; every file in it but ``executed`` is kept.
    info : dict, optional
        Stored alongside (the step's folder name, its seconds).

    Returns
    -------
    Path
        The entry's folder.
    """
    cache_dir, executed, folder = Path(cache_dir), Path(executed), Path(folder)
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=cache_dir))
    try:
        shutil.copyfile(executed, staging / EXECUTED_FILE)
        skip = executed.relative_to(folder).as_posix() if executed.parent == folder else None
        files = file_hashes(folder, skip=skip)
        for rel in files:
            target = staging / FILES_FOLDER / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / rel, target)
        entry = {"format": CACHE_FORMAT, "key": key, "executed": file_sha256(staging / EXECUTED_FILE),
                 "files": files, **(info or {})}
        (staging / ENTRY_FILE).write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n")
        final = cache_dir / key
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def load_entry(cache_dir: str | os.PathLike, key: str) -> dict[str, Any] | None:
    """The entry of ``key`` when it is whole and every byte matches its hashes, else None.

    An entry that exists but fails a check (no or unreadable ``entry.json``, another key or
    format, a missing, changed or unlisted file) is deleted, so the step runs again.
    """
    entry_dir = Path(cache_dir) / key
    if not entry_dir.is_dir():
        return None
    try:
        entry = json.loads((entry_dir / ENTRY_FILE).read_text())
        whole = (entry.get("format") == CACHE_FORMAT and entry.get("key") == key
                 and file_sha256(entry_dir / EXECUTED_FILE) == entry["executed"]
                 and file_hashes(entry_dir / FILES_FOLDER) == entry["files"]
                 and sorted(p.name for p in entry_dir.iterdir()) == sorted(
                     [ENTRY_FILE, EXECUTED_FILE] + ([FILES_FOLDER] if (entry_dir / FILES_FOLDER).exists() else [])))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        whole = False
    if not whole:
        shutil.rmtree(entry_dir, ignore_errors=True)
        return None
    os.utime(entry_dir)  # last used now: what prune() goes by
    entry["path"] = str(entry_dir)
    return entry


def prune(cache_dir: str | os.PathLike, *, keep: int = KEEP_PER_STEP) -> list[Path]:
    """Delete all but the ``keep`` most recently used entries of each step (by the ``step``
    their ``entry.json`` names), so the cache does not grow with every edit; returns what was
    deleted. Entries without a readable ``entry.json`` are left to :func:`load_entry`."""
    by_step: dict[str, list[Path]] = {}
    for meta in Path(cache_dir).glob(f"*/{ENTRY_FILE}"):
        try:
            step = json.loads(meta.read_text())["step"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        by_step.setdefault(step, []).append(meta.parent)
    deleted = []
    for entries in by_step.values():
        entries.sort(key=lambda path: path.stat().st_mtime_ns, reverse=True)
        for old in entries[keep:]:
            shutil.rmtree(old, ignore_errors=True)
            deleted.append(old)
    return deleted


def restore_files(entry: dict[str, Any], folder: str | os.PathLike, *, keep: str) -> None:
    """Make ``folder`` hold exactly the entry's files (and ``keep``, the page): files already
    equal are left untouched (their times too, so the book build does not re-read them),
    others are copied, and files the entry does not list are removed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = Path(entry["path"]) / FILES_FOLDER
    present = file_hashes(folder, skip=keep)
    for rel in set(present) - set(entry["files"]):
        (folder / rel).unlink()
    for rel, sha in entry["files"].items():
        if present.get(rel) != sha:
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, target)
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(sub.iterdir()):
            sub.rmdir()


def assemble_notebook(executed: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """An executed notebook with the current notebook's Markdown.

    The code cells of ``executed`` (papermill's output: outputs, counts, its injected-parameters
    cell) are matched in order with the code cells of ``current``; Markdown and raw cells come
    from ``current``. The notebook-level metadata is the executed one's.

    Parameters
    ----------
    executed, current : dict
        Notebooks as JSON (nbformat 4) dicts.

    Returns
    -------
    dict
        A new notebook.

    Raises
    ------
    ValueError
        When the two do not have the same code cells (sources and tags): only a Markdown
        change may be carried over, never a code change.
    """
    def injected(cell: dict[str, Any]) -> bool:
        return "injected-parameters" in cell.get("metadata", {}).get("tags", [])

    ran = [cell for cell in executed["cells"] if cell["cell_type"] == "code"]
    want = [cell for cell in current["cells"] if cell["cell_type"] == "code"]
    kept = [cell for cell in ran if not injected(cell)]
    same = len(kept) == len(want) and all(
        _text(a["source"]) == _text(b["source"]) and a.get("metadata", {}).get("tags", []) ==
        b.get("metadata", {}).get("tags", []) for a, b in zip(kept, want))
    if not same:
        raise ValueError("assemble_notebook: the executed notebook's code cells differ from the current notebook's; "
                         "only Markdown may change between them")
    cells, position = [], 0

    def take_injected() -> None:  # papermill puts its cell right after "parameters", or first
        nonlocal position
        while position < len(ran) and injected(ran[position]):
            cells.append(copy.deepcopy(ran[position]))
            position += 1
    take_injected()
    for cell in current["cells"]:
        if cell["cell_type"] != "code":
            cells.append(copy.deepcopy(cell))
            continue
        cells.append(copy.deepcopy(ran[position]))
        position += 1
        take_injected()
    return {**copy.deepcopy(executed), "cells": cells}
