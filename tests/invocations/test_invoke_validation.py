"""What POST /api/v1/invoke refuses before anything is run (Property 1), each refusal in
the error shape (Property 5), against the running app; and Properties 8 (sanitization)
and 1 (the request serializer) by Hypothesis, in process.

The app under test is wired to a runtime that refuses every connection: a request that
got as far as the runtime would answer 502 CONNECTION_FAILED after 3 s of retries, and
would leave a session behind (the interaction is written before the runtime is called).
"""

from __future__ import annotations

import json
import time
import unicodedata
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invocations.serializers import InvokeRequestSerializer, prompt_sanitize
from skymarshal_api.web.validation import is_uuid4
from tests.invocations.live import PROMPT, App, Stack, assert_error

pytestmark = pytest.mark.slow

MAX_BODY = 64 * 1024
FIELDS = {"prompt", "session_id", "streaming", "on_conflict"}


@pytest.fixture(scope="module")
def app(invoke_stack: Stack) -> App:
    return invoke_stack.fault("refuse")


def _refused(
    app: App, body: bytes, status: int, code: str, *, content_type: str = "application/json"
) -> dict[str, Any]:
    """POST ``body``: refused with ``status`` and ``code`` at once, nothing recorded."""
    sessions_before = app.session_ids()
    started = time.monotonic()
    response = app.post(body, content_type=content_type)
    elapsed = time.monotonic() - started
    error = assert_error(response, status, code)
    assert elapsed < 2.0, f"{elapsed:.1f} s: the runtime was tried"  # 3 s if it was
    assert app.session_ids() == sessions_before, "an interaction was recorded"
    return error


def _field_errors(app: App, document: Any) -> dict[str, list[str]]:
    error = _refused(app, json.dumps(document).encode(), 400, "INVALID_REQUEST")
    fields: dict[str, list[str]] = error["details"]["fields"]
    for messages in fields.values():
        assert messages
        assert all(isinstance(m, str) and m for m in messages)
    return fields


# --- the body as a whole -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", json.dumps({"prompt": PROMPT})),
        ("application/x-www-form-urlencoded", "prompt=Flight+UA45+delayed+90+minutes"),
        ("application/xml", "<invoke><prompt>Flight UA45 delayed 90 minutes</prompt></invoke>"),
    ],
    ids=["text", "form", "xml"],
)
def test_a_body_that_is_not_json_is_415(app: App, content_type: str, body: str) -> None:
    error = _refused(app, body.encode(), 415, "UNSUPPORTED_MEDIA_TYPE", content_type=content_type)
    assert "application/json" in error["error_message"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"prompt": "Flight UA45 delayed 90 minutes"',
        b"{'prompt': 'Flight UA45 delayed 90 minutes'}",
        b'{"prompt": "Flight UA45 delayed 90 minutes",}',
        b'{"prompt": NaN}',
        b'{"prompt": "Flight UA45 delayed \xff\xfe minutes"}',
    ],
    ids=["truncated", "single-quotes", "trailing-comma", "nan", "not-utf8"],
)
def test_malformed_json_is_400_invalid_json(app: App, body: bytes) -> None:
    _refused(app, body, 400, "INVALID_JSON")


def test_a_body_above_64_kib_is_413(app: App) -> None:
    document = {"prompt": "x" * MAX_BODY}
    body = json.dumps(document).encode()[: MAX_BODY + 1]
    assert len(body) == MAX_BODY + 1

    error = _refused(app, body, 413, "PAYLOAD_TOO_LARGE")

    assert error["details"]["max_bytes"] == MAX_BODY
    assert error["details"]["got_bytes"] == MAX_BODY + 1


def test_a_body_of_exactly_64_kib_is_read_and_judged_on_its_prompt(app: App) -> None:
    prompt = "y" * (MAX_BODY - len(json.dumps({"prompt": ""})))
    body = json.dumps({"prompt": prompt}).encode()
    assert len(body) == MAX_BODY

    error = _refused(app, body, 400, "INVALID_REQUEST")

    assert f"got {len(prompt)}" in error["details"]["fields"]["prompt"][0]


@pytest.mark.parametrize(
    "body",
    [b"[]", json.dumps([PROMPT]).encode(), json.dumps(PROMPT).encode(), b"42", b"null", b"true"],
    ids=["empty-array", "array", "string", "number", "null", "true"],
)
def test_a_body_that_is_not_an_object_is_400(app: App, body: bytes) -> None:
    error = _refused(app, body, 400, "INVALID_REQUEST")
    assert set(error["details"]["fields"]) == {"non_field_errors"}


@pytest.mark.parametrize(
    ("document", "unknown"),
    [
        ({"prompt": PROMPT, "temperature": 0.2}, {"temperature"}),
        ({"prompt": PROMPT, "Prompt": PROMPT, "stream": True}, {"Prompt", "stream"}),
    ],
)
def test_unknown_fields_are_400_and_named(
    app: App, document: dict[str, Any], unknown: set[str]
) -> None:
    assert set(_field_errors(app, document)) == unknown


def test_every_failing_field_is_named(app: App) -> None:
    fields = _field_errors(
        app, {"prompt": "short", "session_id": "nope", "streaming": "yes", "on_conflict": "wait"}
    )
    assert set(fields) == FIELDS


# --- prompt --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [{}, {"session_id": str(uuid.uuid4())}, {"streaming": False}],
    ids=["empty", "session-only", "streaming-only"],
)
def test_a_missing_prompt_is_400(app: App, document: dict[str, Any]) -> None:
    assert set(_field_errors(app, document)) == {"prompt"}


def test_an_empty_body_is_400_missing_prompt(app: App) -> None:
    error = _refused(app, b"", 400, "INVALID_REQUEST")
    assert set(error["details"]["fields"]) == {"prompt"}


@pytest.mark.parametrize(
    "prompt",
    [True, None, [PROMPT], {"text": PROMPT}, 3.14],
    ids=["bool", "null", "list", "object", "float"],
)
def test_a_prompt_that_is_not_a_string_is_400(app: App, prompt: Any) -> None:
    assert set(_field_errors(app, {"prompt": prompt})) == {"prompt"}


def test_a_prompt_that_is_a_number_is_400(app: App) -> None:
    """A JSON number is not a string, whatever its length (DRF's CharField turns
    12345678901 into "12345678901", and the runtime is called with it)."""
    assert set(_field_errors(app, {"prompt": 12345678901})) == {"prompt"}


@pytest.mark.parametrize(
    ("prompt", "counted"),
    [
        ("<<{{ab}}>>\x01\x7fc", 3),
        ("<Flight UA>", 9),
        (" \t\n" * 20, 0),
        ("<>{}" * 50, 0),
        ("z" * 10_001, 10_001),
        ("  {" + "w" * 10_001 + "}\x1b\n", 10_001),
    ],
    ids=["3-after-sanitizing", "9", "whitespace", "only-removed", "10001", "10001-sanitized"],
)
def test_a_prompt_out_of_10_to_10000_after_sanitizing_is_400_with_its_length(
    app: App, prompt: str, counted: int
) -> None:
    [message] = _field_errors(app, {"prompt": prompt})["prompt"]
    assert "prompt" in message
    assert "10 to 10000" in message
    assert f"got {counted}." in message


def test_a_prompt_of_3_characters_after_removing_nul_and_brackets_is_400_with_its_length(
    app: App,
) -> None:
    """ "<<{{ab}}>>\\x00\\x01c" is "abc" once sanitized. (The app answers "Null characters
    are not allowed." instead: DRF's CharField refuses NUL before the sanitizer runs.)"""
    [message] = _field_errors(app, {"prompt": "<<{{ab}}>>\x00\x01c"})["prompt"]
    assert "prompt" in message
    assert "got 3." in message


# --- session_id and streaming --------------------------------------------------------------


_V4 = str(uuid.uuid4())


@pytest.mark.parametrize(
    "session_id",
    [
        _V4.upper(),
        str(uuid.uuid1()),
        uuid.uuid4().hex,
        f"{{{_V4}}}",
        f"urn:uuid:{_V4}",
        _V4[:19] + "c" + _V4[20:],
        "00000000-0000-0000-0000-000000000000",
        f" {_V4}",
        "",
        12345,
        None,
        True,
    ],
    ids=[
        "uppercase",
        "version-1",
        "no-hyphens",
        "braces",
        "urn",
        "bad-variant",
        "nil",
        "leading-space",
        "blank",
        "int",
        "null",
        "bool",
    ],
)
def test_a_session_id_that_is_not_a_canonical_uuid4_is_400(app: App, session_id: Any) -> None:
    """(With a leading space the app trims the id and runs the request: CharField's
    trim_whitespace.)"""
    assert set(_field_errors(app, {"prompt": PROMPT, "session_id": session_id})) == {"session_id"}


@pytest.mark.parametrize("streaming", ["true", 1, 0, "false", "yes", None], ids=str)
def test_streaming_that_is_not_a_json_boolean_is_400(app: App, streaming: Any) -> None:
    assert set(_field_errors(app, {"prompt": PROMPT, "streaming": streaming})) == {"streaming"}


# --- Property 8: prompt sanitization, in process --------------------------------------------

# "Control characters" as the app counts them: Unicode's Other categories but private-use
# (Co) and unassigned (Cn) code points, i.e. controls (Cc), format characters (Cf) and
# surrogates (Cs).
_CONTROL = ("Cc", "Cf", "Cs")
_NOTABLE = list("<>{}\n\t\r\x00\x01\x1b\x7f\x85\x9b \xa0\u3000\u200b\u200d\u202e\ufeff")
_NOTABLE += ["\ud800", "\udfff", "\ue000", "\u0378", "\U0010fffd", "✈", "é", "中", "🛫"]
prompts = st.text(st.one_of(st.characters(codec=None), st.sampled_from(_NOTABLE)), max_size=60)


def _removed(ch: str) -> bool:
    return ch in "<>{}" or (unicodedata.category(ch) in _CONTROL and ch not in "\n\t")


@settings(max_examples=800)
@given(prompts)
def test_sanitizing_removes_brackets_and_controls_keeps_the_rest_and_is_idempotent(
    text: str,
) -> None:
    out = prompt_sanitize(text)
    assert not set(out) & set("<>{}")
    assert all(ch in "\n\t" or unicodedata.category(ch) not in _CONTROL for ch in out)
    assert out == out.strip()
    assert prompt_sanitize(out) == out
    assert out == "".join(ch for ch in text if not _removed(ch)).strip()


def test_sanitizing_examples() -> None:
    c0_and_c1 = "".join(chr(n) for n in [*range(0x20), 0x7F, *range(0x80, 0xA0)])
    assert prompt_sanitize(f"a{c0_and_c1}b") == "a\t\nb"
    assert prompt_sanitize("\r\nFlight <UA45>\r\n") == "Flight UA45"
    assert prompt_sanitize("{{x}}\ue000\u0378 🛫 中") == "x\ue000\u0378 🛫 中"
    assert prompt_sanitize("\x00 \t padded \n\x01") == "padded"


# --- Property 1: the request serializer, in process -----------------------------------------

_JUNK = " \t\n<>{}\x00\x01\x7f\u200b"
prompt_values = st.one_of(
    st.builds(
        lambda pre, mid, pad, post: pre + mid + "x" * pad + post,
        st.text(_JUNK, max_size=4),
        st.text(max_size=12),
        st.sampled_from([0, 4, 9, 10, 9_990, 9_999, 10_000, 10_001]),
        st.text(_JUNK, max_size=4),
    ),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=12), max_size=2),
)
session_values = st.one_of(
    st.uuids(version=4).map(str),
    st.uuids(version=4).map(lambda u: str(u).upper()),
    st.uuids(version=1).map(str),
    st.uuids().map(lambda u: u.hex),
    st.text(max_size=40),
    st.integers(),
    st.none(),
)
not_booleans: list[Any] = ["true", "false", 1, 0, None, "yes", []]
streaming_values = st.one_of(st.booleans(), st.sampled_from(not_booleans))
objects = st.builds(
    lambda known, unknown: {**known, **unknown},
    st.fixed_dictionaries(
        {},
        optional={
            "prompt": st.one_of(prompt_values, prompt_values),  # present more often than not
            "session_id": st.one_of(st.uuids(version=4).map(str), session_values),
            "streaming": streaming_values,
            "on_conflict": st.sampled_from(["reject", "enqueue", "queue", "", None, 1]),
        },
    ),
    st.one_of(
        st.just({}),
        st.just({}),
        st.dictionaries(st.sampled_from(["temperature", "Prompt", "stream", ""]), st.none()),
    ),
)


def _failing_fields(body: dict[str, Any]) -> set[str]:
    failing = set()
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not 10 <= len(prompt_sanitize(prompt)) <= 10_000:
        failing.add("prompt")
    if "session_id" in body and not (
        isinstance(body["session_id"], str) and is_uuid4(body["session_id"])
    ):
        failing.add("session_id")
    if "streaming" in body and not isinstance(body["streaming"], bool):
        failing.add("streaming")
    if "on_conflict" in body and body["on_conflict"] not in ("reject", "enqueue"):
        failing.add("on_conflict")
    return failing


@settings(max_examples=100)
@given(st.one_of(st.lists(st.integers(), max_size=2), st.text(max_size=20), st.integers()))
def test_a_body_that_is_not_an_object_is_never_valid(body: Any) -> None:
    serializer = InvokeRequestSerializer(data=body)
    assert not serializer.is_valid()
    assert set(serializer.errors) == {"non_field_errors"}


@settings(max_examples=600)
@given(objects)
def test_a_request_is_valid_iff_every_field_is(body: dict[str, Any]) -> None:
    serializer = InvokeRequestSerializer(data=body)
    valid = serializer.is_valid()
    unknown = set(body) - FIELDS
    failing = _failing_fields(body)
    assert valid == (not unknown and not failing), (serializer.errors, failing, unknown)
    if valid:
        expected = {
            "prompt": prompt_sanitize(body["prompt"]),
            "streaming": False,
            "on_conflict": "reject",
        }
        expected.update(
            {k: body[k] for k in ("session_id", "streaming", "on_conflict") if k in body}
        )
        assert dict(serializer.validated_data) == expected
    elif unknown:
        assert unknown <= set(serializer.errors)
    else:
        assert set(serializer.errors) == failing


def _is_valid(body: dict[str, Any]) -> bool:
    return InvokeRequestSerializer(data=body).is_valid()


def test_the_prompt_length_bounds_apply_to_the_sanitized_prompt() -> None:
    assert not _is_valid({"prompt": "x" * 9})
    assert _is_valid({"prompt": "x" * 10})
    assert _is_valid({"prompt": "x" * 10_000})
    assert not _is_valid({"prompt": "x" * 10_001})
    assert not _is_valid({"prompt": "<{" + "x" * 9 + "}>"})
    assert _is_valid({"prompt": "<{" + "x" * 10_000 + "}>\x01  "})


def test_a_number_is_not_a_prompt() -> None:
    serializer = InvokeRequestSerializer(data={"prompt": 12345678901})
    assert not serializer.is_valid(), serializer.validated_data


def test_a_nul_character_is_sanitized_away_like_any_control_character() -> None:
    serializer = InvokeRequestSerializer(data={"prompt": f"{PROMPT}\x00"})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["prompt"] == PROMPT
