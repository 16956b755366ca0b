"""Profiling recipes: scripts that run one bench scenario once, for a profiler to wrap."""
