"""Headless Chromium on a closed machine: the flags that keep it from reaching out (the tests,
benchmarks and screenshots of the HTML report use them)."""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# No sandbox (CI runs as root), no GPU, and none of the background connections that a machine
# without a network refuses by the dozen.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
