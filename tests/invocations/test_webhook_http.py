"""Sending a webhook safely (invocations/webhook_http.py): which addresses a webhook may
reach (IPv4, IPv6, IPv4-mapped and the other IPv6 forms of an IPv4 address), which URLs
are taken, a name that resolves to a private address (also only on a second lookup: DNS
rebinding) is never connected to, no redirect is followed, a slow receiver times out, an
answer is read only in part; against a real receiver on 127.0.0.1 with the local-only
setting, and never connected to without it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import LazySettings

from invocations.webhook_http import address_refusal, webhook_post, webhook_url_problem
from tests.webhook_receiver import Answer, Receiver, webhook_receiver

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:4700:4700::1111"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as started:
        yield started


@pytest.fixture
def local_http(settings: LazySettings) -> LazySettings:
    settings.WEBHOOK_ALLOW_LOCAL_HTTP = True
    return settings


@pytest.fixture
def no_local_http(settings: LazySettings) -> LazySettings:
    settings.WEBHOOK_ALLOW_LOCAL_HTTP = False
    return settings


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("10.0.0.1", "private"),
        ("10.255.255.254", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:a00:1", "private"),  # the same, written in hex
        ("fc00::1", "private"),  # unique local
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local"),  # the instance metadata service
        ("::ffff:169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),  # with a zone
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "reserved"),  # noqa: S104 - an address under test
        ("::", "reserved"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("100.64.0.1", "not public"),  # carrier-grade NAT
        ("192.0.2.1", "private"),  # documentation
        ("2001:db8::1", "private"),
    ],
)
def test_an_address_that_is_not_public_is_refused(
    no_local_http: LazySettings, address: str, reason: str
) -> None:
    refusal = address_refusal(address)
    assert refusal is not None
    assert reason in refusal


@pytest.mark.parametrize("address", [PUBLIC_V4, "8.8.8.8", PUBLIC_V6, f"::ffff:{PUBLIC_V4}"])
def test_a_public_address_is_allowed(no_local_http: LazySettings, address: str) -> None:
    assert address_refusal(address) is None


def test_the_local_setting_allows_loopback_and_nothing_else(local_http: LazySettings) -> None:
    assert address_refusal("127.0.0.1") is None
    assert address_refusal("::1") is None
    assert address_refusal("10.0.0.1") is not None
    assert address_refusal("169.254.169.254") is not None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.com/x", "https://"),
        ("http://127.0.0.1:9000/x", "https://"),
        ("ftp://hooks.example.com/x", "https://"),
        ("hooks.example.com/x", "https://"),
        ("https://", "host"),
        ("https://user:pass@hooks.example.com/x", "credentials"),
        ("https://hooks.example.com/x#part", "fragment"),
        ("https://hooks.example.com:99999/x", "not a valid URL"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://[::1]/x", "loopback"),
        ("https://10.0.0.7/x", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::ffff:169.254.169.254]/x", "link-local"),
        ("https://hooks.example.com/" + "a" * 2100, "at most 2048"),
    ],
)
def test_a_url_that_cannot_be_a_webhook_says_why(
    no_local_http: LazySettings, url: str, problem: str
) -> None:
    found = webhook_url_problem(url)
    assert found is not None
    assert problem in found


def test_https_urls_of_names_and_public_addresses_are_taken(no_local_http: LazySettings) -> None:
    for url in (
        "https://hooks.example.com/skymarshal?token=abc",
        f"https://{PUBLIC_V4}:8443/x",
        f"https://[{PUBLIC_V6}]/x",
    ):
        assert webhook_url_problem(url) is None, url


def test_the_local_setting_allows_http_to_127_0_0_1_only(local_http: LazySettings) -> None:
    assert webhook_url_problem("http://127.0.0.1:9000/hook") is None
    found = webhook_url_problem("http://hooks.example.com/hook")
    assert found is not None
    assert "loopback" in found


class _Recorder:
    """A resolver and a connector that record their calls and never reach the network."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []
        self.connected: list[str] = []

    def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def connect(self, address: str, port: int, timeout: float) -> socket.socket:
        self.connected.append(address)
        raise ConnectionRefusedError("the test's connector connects nowhere")


def _post(url: str, recorder: _Recorder, **kwargs: Any) -> Any:
    return webhook_post(
        url,
        b"{}",
        {"Content-Type": "application/json"},
        timeout=kwargs.pop("timeout", 2.0),
        resolve=recorder.resolve,
        connect=recorder.connect,
    )


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["169.254.169.254"],
        ["::1"],
        ["::ffff:127.0.0.1"],
        ["fd00::5"],
        [PUBLIC_V4, "10.0.0.1"],  # one private address among public ones is enough
    ],
)
def test_a_name_that_resolves_to_an_address_that_is_not_public_is_never_connected_to(
    no_local_http: LazySettings, addresses: list[str]
) -> None:
    recorder = _Recorder(addresses)
    outcome = _post("https://hooks.example.com/x", recorder)
    assert outcome.status_code is None
    assert outcome.error is not None
    assert outcome.error.startswith("refused: the host resolves to")
    assert recorder.connected == []


def test_dns_rebinding_the_address_checked_is_the_address_connected_to(
    no_local_http: LazySettings,
) -> None:
    """A name that answers a public address first and a private one after: it is looked up
    once, and only the public address it answered is connected to."""
    recorder = _Recorder([PUBLIC_V4], ["10.0.0.1"], ["169.254.169.254"])
    outcome = _post("https://rebind.example.com/x", recorder)
    assert recorder.lookups == ["rebind.example.com"]
    assert recorder.connected == [PUBLIC_V4]
    assert outcome.status_code is None
    assert outcome.error is not None
    assert outcome.error.startswith("could not connect")


def test_without_the_local_setting_a_local_receiver_is_never_connected_to(
    no_local_http: LazySettings, receiver: Receiver
) -> None:
    for url in (
        receiver.url(),  # http://127.0.0.1:PORT
        f"https://127.0.0.1:{receiver.port}/hook",
        f"https://localhost:{receiver.port}/hook",  # a name that resolves to loopback
        f"https://[::ffff:127.0.0.1]:{receiver.port}/hook",
    ):
        outcome = webhook_post(url, b"{}", {}, timeout=2.0)
        assert outcome.status_code is None, url
        assert outcome.error is not None
        assert outcome.error.startswith("refused: "), outcome.error
    time.sleep(0.2)
    assert receiver.received == []


def test_a_local_receiver_gets_the_body_and_headers(
    local_http: LazySettings, receiver: Receiver
) -> None:
    outcome = webhook_post(
        receiver.url("/hook?x=1"),
        b'{"type":"run.succeeded"}',
        {"Content-Type": "application/json", "webhook-id": "msg_1"},
        timeout=5.0,
    )
    assert outcome.status_code == 200
    assert outcome.error is None
    [got] = receiver.wait_for(1)
    assert got.path == "/hook?x=1"
    assert got.body == b'{"type":"run.succeeded"}'
    assert got.headers["webhook-id"] == "msg_1"
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"


def test_a_redirect_is_not_followed(local_http: LazySettings, receiver: Receiver) -> None:
    receiver.answer(Answer(status=307, location=receiver.url("/elsewhere")))
    outcome = webhook_post(receiver.url("/hook"), b"{}", {}, timeout=5.0)
    assert outcome.status_code == 307
    time.sleep(0.3)
    assert [r.path for r in receiver.received] == ["/hook"]


def test_a_slow_receiver_times_out(local_http: LazySettings, receiver: Receiver) -> None:
    receiver.answer(Answer(delay=3.0))
    began = time.monotonic()
    outcome = webhook_post(receiver.url(), b"{}", {}, timeout=0.5)
    assert time.monotonic() - began < 2.0
    assert outcome.status_code is None
    assert outcome.error == "timed out after 0.5 s"


def test_a_large_answer_is_read_only_in_part(local_http: LazySettings, receiver: Receiver) -> None:
    receiver.answer(Answer(status=200, body=b"x" * (8 * 1024 * 1024)))
    began = time.monotonic()
    outcome = webhook_post(receiver.url(), b"{}", {}, timeout=5.0)
    assert outcome.status_code == 200
    assert time.monotonic() - began < 2.0


def test_a_refused_connection_is_an_outcome_not_an_exception(local_http: LazySettings) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    outcome = webhook_post(f"http://127.0.0.1:{port}/hook", b"{}", {}, timeout=2.0)
    assert outcome.status_code is None
    assert outcome.error is not None
    assert outcome.error.startswith("could not connect")
