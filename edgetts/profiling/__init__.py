"""Measuring this device: what it is, how fast it runs a model, and what that costs in energy."""
