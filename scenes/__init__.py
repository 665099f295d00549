"""Capture → camera poses → Gaussian-splat (or NeRF) scene: metric, renderable, collidable."""
