"""The persona explorer: HTML pages of `personas serve` for the people who use personas (see routes.py)."""
