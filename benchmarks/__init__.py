"""Benchmarks of the pipeline's throughput, Gemma triage rate and memory: `make bench`."""
