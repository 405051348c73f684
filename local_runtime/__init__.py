"""A local SkyMarshal runtime that honours the AgentCore Runtime container contract.

``python -m local_runtime --port 8080`` serves ``GET /ping``, ``POST /invocations`` and the
WebSocket ``/ws`` on 127.0.0.1, simulating the SkyMarshal agents deterministically, with
fault modes for tests. See ``python -m local_runtime --help``.
"""

__version__ = "1.0.0"
