"""edgetts: the most accurate answer a small reasoning LLM can give within a latency budget,
on Jetson-class GPUs and plain CPUs. See README.md and design.md."""

__version__ = "0.1.0"
