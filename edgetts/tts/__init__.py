"""Test-time scaling: answer extraction, majority vote (self-consistency) and its early stop."""
