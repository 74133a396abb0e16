"""Human review of persona changes: label overrides kept across days, and drift reviews that hold the champion."""
