"""The running bot process: its parts wired from settings, status endpoints, metrics, logging."""
