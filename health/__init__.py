"""Health: the unauthenticated status of the API and of what it depends on."""
