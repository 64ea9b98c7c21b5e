"""Local models: the catalogue of bundled models, the managed llama-server and its build."""
