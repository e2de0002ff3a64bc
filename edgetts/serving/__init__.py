"""Thin service adapters over one Engine, HTTP and ROS 2: parse, validate, map errors; no planning."""
