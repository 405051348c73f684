"""Request limits: the per-caller rate limits."""
