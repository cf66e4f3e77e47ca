"""Stored objects as pure values: key names, the metadata they carry, CDN link signatures."""
