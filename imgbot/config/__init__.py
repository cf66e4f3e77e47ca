"""Configuration: settings read once from the environment or ``.env``, and the rules of values."""
