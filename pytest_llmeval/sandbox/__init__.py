"""The sandbox for generated code: the host side, the worker inside it and code metrics."""
