"""Durable jobs: the worker that claims, heart-beats and fences them, and tracked tasks."""
