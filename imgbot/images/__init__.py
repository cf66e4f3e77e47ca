"""Image bytes: validation, the stored renditions, metadata stripping and fitting for edit APIs."""
