"""Benchmarks, not tests: each module runs as `python -m bench.<name>`, prints a markdown table and
writes JSON under bench/results/ (git-ignored)."""
