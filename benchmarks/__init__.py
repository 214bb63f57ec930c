"""The benchmark of issue 8: iceprobe's time to a verdict and its cost at fleet scale, side by
side with its peers, in a network namespace of its own. Run `python -m benchmarks.run` as root;
see benchmarks/README.md."""
