"""Local stand-ins for the AWS APIs the packaged handler calls that cannot run here: the
Lambda service's Invoke, the AgentCore control plane's GetAgentRuntime and the AgentCore
data plane's StopRuntimeSession, all answered by one HTTP server on 127.0.0.1 (botocore is
pointed at it with AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL_BEDROCK_AGENTCORE_CONTROL and
AWS_ENDPOINT_URL_BEDROCK_AGENTCORE). Each answers as the service's API reference says, with
the fields botocore reads; every request is kept for the test to inspect."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass
class AwsStandIn:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        """The variables that send the handler's botocore clients here."""
        return {
            "AWS_ENDPOINT_URL_LAMBDA": self.url,
            "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE_CONTROL": self.url,
            "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": self.url,
        }

    def invocations(self) -> list[dict[str, Any]]:
        """The payloads of the Lambda Invoke requests received, in order."""
        return [request["payload"] for request in self.requests if request["api"] == "Invoke"]


@contextmanager
def aws_standin(runtime_status: str = "READY") -> Iterator[AwsStandIn]:
    standin = AwsStandIn()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any] | None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length) if length else b""
            return json.loads(raw) if raw else None

        def do_POST(self) -> None:
            path = unquote(urlsplit(self.path).path)
            payload = self._body()
            if path.startswith("/2015-03-31/functions/") and path.endswith("/invocations"):
                # Lambda Invoke, InvocationType Event: 202 Accepted, no body.
                standin.requests.append({"api": "Invoke", "path": path, "payload": payload})
                self._answer(202, None)
            elif path.startswith("/runtimes/") and path.endswith("/stopruntimesession"):
                session = self.headers.get("X-Amzn-Bedrock-AgentCore-Runtime-Session-Id")
                standin.requests.append({"api": "StopRuntimeSession", "path": path})
                self._answer(200, {"runtimeSessionId": session, "statusCode": 200})
            else:
                self._answer(404, {"message": f"no stand-in for POST {path}"})

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            if path.startswith("/runtimes/"):
                runtime_id = path.strip("/").split("/")[1]
                standin.requests.append({"api": "GetAgentRuntime", "path": path})
                arn = f"arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/{runtime_id}"
                self._answer(
                    200,
                    {
                        "agentRuntimeArn": arn,
                        "agentRuntimeName": runtime_id.rsplit("-", 1)[0],
                        "agentRuntimeId": runtime_id,
                        "agentRuntimeVersion": "1",
                        "createdAt": "2026-11-01T00:00:00Z",
                        "lastUpdatedAt": "2026-11-01T00:00:00Z",
                        "roleArn": "arn:aws:iam::123456789012:role/skymarshal-runtime",
                        "status": runtime_status,
                        "lifecycleConfiguration": {},
                    },
                )
            else:
                self._answer(404, {"message": f"no stand-in for GET {path}"})

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    standin.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
