"""Coverage-guided fuzz targets (atheris); run with ``make fuzz``, not part of ``make test``."""
