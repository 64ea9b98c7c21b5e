"""LLM-as-judge and embeddings: grading against a rubric, pairwise preference, calibration."""
