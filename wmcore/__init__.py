"""Leaf utilities shared by every package: atomic artifact writes, safetensors I/O with clear
errors, run directories (config, log, metrics), and image-fidelity metrics.

It imports none of `scenes`, `worldmodel`, `envs` or `training`, so each of them may use it
without breaking the one-way arrows of the architecture.
"""
