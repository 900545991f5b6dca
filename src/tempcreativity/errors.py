"""Errors the pipeline reports to its users."""


class ConfigError(ValueError):
    """A config that the pipeline cannot run; the message names the field and what is allowed."""
