"""The HTTP API: admin and client routes under /api/v1, health and metrics."""
