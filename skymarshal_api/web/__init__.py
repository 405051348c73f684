"""The HTTP plumbing: the one error shape, the strict header grammars, parsers, content
negotiation, API Gateway's own answers, cursors, validation, middleware, the OpenAPI
helpers."""
