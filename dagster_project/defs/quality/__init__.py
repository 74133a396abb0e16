"""The Great Expectations gates as blocking asset checks."""
