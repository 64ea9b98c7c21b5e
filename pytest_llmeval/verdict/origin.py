"""Where an exception came from: the test's own judging of the answer, or the machinery around
it (pytest, its plugins, this plugin, the event loop). Only the first may count against a model.
"""

from __future__ import annotations

import asyncio
import os
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

# Frames of pytest.fail/skip/xfail themselves: the caller of those is what raised.
_OUTCOME_HELPERS = ("_pytest" + os.sep + "outcomes.py",)
_ASYNCIO = str(Path(asyncio.__file__).parent) + os.sep


@dataclass(frozen=True)
class Machinery:
    """Source files and package folders whose exceptions are the harness's, not the model's."""

    folders: tuple[str, ...]
    files: Mapping[str, str]  # a plugin module's file -> its module name

    @classmethod
    def of(cls, packages: Iterable[ModuleType], plugins: Iterable[object]) -> Machinery:
        """Whole `packages` (pytest, pluggy, this plugin) and each plugin module's own file;
        conftest files are the user's code, so they are left out."""
        folders = tuple(str(Path(p.__file__ or "").parent) + os.sep for p in packages)
        files = {}
        for plugin in plugins:
            path = getattr(plugin, "__file__", None)
            if isinstance(plugin, ModuleType) and path and Path(path).name != "conftest.py":
                files[str(Path(path))] = plugin.__name__
        return cls(folders, files)

    def origin(self, exc: BaseException) -> str | None:
        """The machinery that raised `exc` (a file or folder name), or None for the test's code.

        The raiser is the innermost frame, not counting pytest.fail/skip; an asyncio
        RuntimeError (a loop already running, closed, or another thread's) is the harness's too.
        """
        frames = [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if not f.filename.endswith(_OUTCOME_HELPERS)
        ]
        if not frames:
            return None
        path = frames[-1].filename
        if isinstance(exc, RuntimeError) and path.startswith(_ASYNCIO):
            return "asyncio"
        for folder in self.folders:
            if path.startswith(folder):
                return Path(folder).name
        return self.files.get(path)
