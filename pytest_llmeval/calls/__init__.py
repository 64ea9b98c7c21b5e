"""Calls to models: the client, retries, rate limits, budget, cache, streaming and the runtime."""

CACHE_MODES = ("off", "read", "write", "readwrite", "replay")  # --llm-cache
