"""Persona API: the champion's personas over HTTP, and posted events assigned on the spot.

`personas serve` runs it; `personas bench-api` measures the POST. The warehouse is read
into memory (`snapshot`), never held open, so the pipeline keeps its single-writer file.
"""
