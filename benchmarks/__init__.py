"""The benchmark suite: latency, FLOPs, memory and compile time."""
