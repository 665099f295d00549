"""Training, validation, rendering and the command-line program; composes the other packages."""
