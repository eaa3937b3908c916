"""Fixtures for the 8-device tests (the parent conftest's are shared through rootdir)."""
