"""A hand-run benchmark: imgbot against the old save-to-folder-and-http.server design."""
