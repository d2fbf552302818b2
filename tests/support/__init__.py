"""Helpers shared by the test groups (importable as ``support`` thanks to tests/conftest.py)."""
