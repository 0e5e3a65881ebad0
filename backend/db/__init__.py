"""Database access: connection manager, embedded development server, schema registry."""
