"""pydl's kernel benchmarks: ``python -m benchmarks --help``."""
