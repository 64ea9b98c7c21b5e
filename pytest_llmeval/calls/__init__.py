"""Calls to models: the client, retries, rate limits, budget, cache, streaming and the runtime."""
