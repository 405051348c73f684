"""Observability: the request's observation, JSON logs, EMF metrics, X-Ray segments, Server-
Timing, request ids."""
