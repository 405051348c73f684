"""A second runtime, on bedrock-agentcore's ``BedrockAgentCoreApp`` like the local one,
that speaks design.md's WebSocket Message Protocol to the letter: its ``chunk`` messages
carry only ``agent``, ``status`` and ``partial_result``; its ``complete`` message only
``status``, ``assessment``, ``recommendations`` and ``execution_time_ms`` (no
``final_decision``, no phases, no metadata). The local runtime sends richer messages, so
only this one shows whether the API accepts a runtime that follows the document.

The prompt picks the script (``script=NAME`` anywhere in it; ``design`` by default):

==================  =======================================================================
design              each agent ``analyzing`` then ``completed`` with its result (maintenance
                    conditional, the others approved), then ``complete``
design-rejected     the same with maintenance rejecting
by-agent-name       no result in the chunks; the assessment holds each agent's by name
unknown-types       ``design`` with messages of unknown types among the chunks
after-terminal      ``design``, then a chunk, an error, a second complete and a binary frame
binary              one chunk, then a binary frame
==================  =======================================================================

``python -m tests.design_runtime --port N`` serves it on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
from typing import Any

import uvicorn
from bedrock_agentcore.runtime import BedrockAgentCoreApp
from bedrock_agentcore.runtime.context import RequestContext
from starlette.websockets import WebSocket, WebSocketDisconnect

SAFETY_AGENTS = ("crew_compliance", "maintenance", "regulatory")
BUSINESS_AGENTS = ("network", "guest_experience", "cargo", "finance")
AGENTS = SAFETY_AGENTS + BUSINESS_AGENTS
EXECUTION_TIME_MS = 4523  # design.md's example
RECOMMENDATIONS = ["Inspect the hydraulic system before release", "Rebook connecting passengers"]
ASSESSMENT = {
    "flight_number": "AA123",
    "disruption_type": "delay",
    "summary": "AA123: 3 h delay caused by weather.",
}

_SCRIPT = re.compile(r"script=([a-z-]+)")


def _result(agent: str, status: str) -> dict[str, Any]:
    return {
        "status": status,
        "confidence": 0.9,
        "reasoning": f"{agent} reviewed the disruption",
        "constraints": [],
        "recommendations": [],
    }


def chunk(agent: str, status: str, partial_result: dict[str, Any]) -> dict[str, Any]:
    """design.md's chunk message: ``agent``, ``status``, ``partial_result``; nothing else."""
    return {
        "type": "chunk",
        "data": {"agent": agent, "status": status, "partial_result": partial_result},
    }


def complete(assessment: dict[str, Any]) -> dict[str, Any]:
    """design.md's final message: exactly its four fields."""
    return {
        "type": "complete",
        "data": {
            "status": "success",
            "assessment": assessment,
            "recommendations": RECOMMENDATIONS,
            "execution_time_ms": EXECUTION_TIME_MS,
        },
    }


def error() -> dict[str, Any]:
    """design.md's error message."""
    return {
        "type": "error",
        "error": {"code": "TIMEOUT", "message": "Agent execution exceeded timeout", "details": {}},
    }


def statuses(script: str) -> dict[str, str]:
    rejecting = "rejected" if script == "design-rejected" else "conditional"
    return {agent: (rejecting if agent == "maintenance" else "approved") for agent in AGENTS}


def script_frames(script: str) -> list[dict[str, Any] | bytes]:
    """The frames a run of ``script`` sends, in order (bytes: a binary frame)."""
    decided = statuses(script)
    if script == "by-agent-name":
        frames: list[dict[str, Any] | bytes] = [chunk(a, "analyzing", {}) for a in AGENTS]
        by_name = {agent: _result(agent, "approved") for agent in AGENTS}
        return [*frames, complete({**ASSESSMENT, **by_name})]
    if script == "binary":
        return [chunk(AGENTS[0], "analyzing", {}), b"\x00\x01binary"]
    frames = []
    for agent in AGENTS:
        frames.append(chunk(agent, "analyzing", {}))
        if script == "unknown-types":
            frames.append({"type": "progress", "data": {"agent": agent, "percent": 50}})
            frames.append({"type": "x-telemetry"})
        frames.append(chunk(agent, "completed", _result(agent, decided[agent])))
    frames.append(complete(ASSESSMENT))
    if script == "after-terminal":
        second = complete(ASSESSMENT)
        second["data"]["final_decision"] = "approved"
        frames += [chunk("network", "analyzing", {}), error(), second, b"\x00after"]
    return frames


def app_build() -> BedrockAgentCoreApp:
    app = BedrockAgentCoreApp()

    @app.websocket
    async def websocket_invoke(websocket: WebSocket, context: RequestContext) -> None:
        await websocket.accept()
        request = json.loads(await websocket.receive_text())
        found = _SCRIPT.search(request["payload"]["prompt"])
        # The API may close first (it reads nothing after the terminal message).
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            for frame in script_frames(found.group(1) if found else "design"):
                if isinstance(frame, bytes):
                    await websocket.send_bytes(frame)
                else:
                    await websocket.send_text(json.dumps(frame))
            await websocket.close(1000)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args()
    uvicorn.run(app_build(), host="127.0.0.1", port=arguments.port, log_level="warning")


if __name__ == "__main__":
    main()
