"""pytest-llmeval: LLM output regression testing as ordinary pytest tests."""
