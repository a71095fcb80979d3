"""Protocol-faithful local stand-ins for outside services, for tests only."""
