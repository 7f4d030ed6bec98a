"""Fuzzing harnesses for the reliability tests (docs/reliability.md); nothing here is collected by pytest."""
