"""Benchmarks: ``make bench`` starts the local stack on free ports and prints numbers."""
