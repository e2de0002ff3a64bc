"""Calibration: what a store entry's accuracy is at every reasoning budget and sample count.

A calibration run samples each eval question K times up to the largest budget, probing for an answer
at every budget checkpoint, and keeps those answers. :mod:`edgetts.calibration.accuracy` turns them
into the table acc(budget, N) that the planner trades against predicted latency.
"""
