"""Verdicts: exact statistics, the marker's plan, sampling, sample records and the gate policy."""
