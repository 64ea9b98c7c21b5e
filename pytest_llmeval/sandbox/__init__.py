"""The sandbox for generated code: the host side, the worker inside it and code metrics."""

ISOLATIONS = ("bwrap", "unsafe")  # --llm-sandbox: bubblewrap, or a plain subprocess
