"""Every error, Django's and DRF's included, comes out in the one error shape."""

from __future__ import annotations

from django.test import Client


def _assert_error_shape(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {
        "status",
        "request_id",
        "error_code",
        "error_message",
        "details",
        "timestamp",
    }
    assert body["status"] == "error"
    assert body["error_code"] == code
    assert body["error_message"]
    assert body["request_id"] == response["X-Request-ID"]
    assert body["timestamp"].endswith("Z")
    return body  # type: ignore[no-any-return]


def test_unknown_path_is_404_in_the_error_shape() -> None:
    response = Client().get("/api/v1/no-such-thing")
    body = _assert_error_shape(response, 404, "NOT_FOUND")
    assert "Traceback" not in response.content.decode()
    assert body["error_message"] == "No resource exists at /api/v1/no-such-thing."


def test_wrong_method_is_405_in_the_error_shape() -> None:
    response = Client().delete("/api/v1/health")
    _assert_error_shape(response, 405, "METHOD_NOT_ALLOWED")


def test_request_ids_differ_between_requests() -> None:
    client = Client()
    ids = {client.get("/api/v1/nothing")["X-Request-ID"] for _ in range(20)}
    assert len(ids) == 20
