"""Route modules, one per CAVE service."""
