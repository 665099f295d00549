"""Example scripts: train your own policy against the worldmodel environments."""
