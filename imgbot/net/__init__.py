"""Outbound HTTP plumbing: the one retry policy and capped body reading."""
