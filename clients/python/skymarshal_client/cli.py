"""The ``skymarshal`` command.

Exit codes (one per outcome, for scripts):

====  ===========================================================================
0     done: the run succeeded (whatever its decision), the command did what it says
1     an unexpected failure of the command itself
2     usage error (an unknown option, a missing argument)
3     the API refused the request (400, 404, 409, 413, 415, 422: see the message)
4     authentication: no credentials, or the signature or permission was refused
5     the run failed (failed, or a runtime or server error: 5xx but 503)
6     the run timed out, or ``runs wait`` gave up after ``--timeout``
7     the run was cancelled
8     still rate-limited or unavailable after the retries (429, 503)
9     the API could not be reached (connection refused, DNS, TLS, broken stream)
====  ===========================================================================
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, is_dataclass
from typing import Annotated, Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import httpx
import typer
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from skymarshal_client import errors
from skymarshal_client.client import Client
from skymarshal_client.models import Event, Invocation, InvokeResponse
from skymarshal_client.signing import AwsIdentity, NoCredentials

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_AUTH = 4
EXIT_RUN_FAILED = 5
EXIT_TIMED_OUT = 6
EXIT_CANCELLED = 7
EXIT_THROTTLED = 8
EXIT_UNREACHABLE = 9

DEFAULT_URL = "http://127.0.0.1:8000"
# The development key pair `make run` accepts (valid only on a developer's machine): used
# for a loopback URL when the AWS credential chain has nothing.
DEV_ACCESS_KEY_ID = "AKIASKYMARSHALLOCAL1"
DEV_SECRET_ACCESS_KEY = "skymarshal-local-development-secret-key"  # noqa: S105 # nosec B105
AGENTS = 7
STATUS_EXIT = {
    "succeeded": EXIT_OK,
    "failed": EXIT_RUN_FAILED,
    "timed_out": EXIT_TIMED_OUT,
    "cancelled": EXIT_CANCELLED,
}

app = typer.Typer(
    help="SkyMarshal API from the command line: invoke, background runs, sessions, a signing "
    "proxy for the browser. Exit codes: 0 ok, 3 refused, 4 authentication, 5 run failed, "
    "6 timed out, 7 cancelled, 8 throttled, 9 unreachable.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="Background runs: submit, wait, events, cancel, get.")
sessions_app = typer.Typer(help="Your sessions and their history.")
app.add_typer(runs_app, name="runs")
app.add_typer(sessions_app, name="sessions")

out = Console()
err = Console(stderr=True)


@dataclass
class Options:
    url: str
    profile: str | None
    region: str | None


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def _credentials(options: Options) -> Credentials | None:
    """None: botocore's chain. For a loopback URL with nothing in the chain (and no
    --profile), the development key pair of `make run`."""
    if options.profile is None and _is_loopback(options.url):
        try:
            AwsIdentity(url=options.url).frozen()
        except (NoCredentials, BotoCoreError):
            return Credentials(DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY)
    return None


def _client(ctx: typer.Context, **kwargs: Any) -> Client:
    options: Options = ctx.obj
    return _call(
        lambda: Client(
            options.url,
            profile=options.profile,
            region=options.region,
            credentials=_credentials(options),
            **kwargs,
        )
    )


def _exit_for(error: errors.SkyMarshalError) -> int:
    if isinstance(error, errors.WaitTimeout | errors.RuntimeTimeout | errors.GatewayTimeout):
        return EXIT_TIMED_OUT
    if isinstance(error, errors.RunCancelled):
        return EXIT_CANCELLED
    if isinstance(error, errors.StreamInterrupted):
        return EXIT_UNREACHABLE
    status = error.status_code or 0
    if status in (401, 403):
        return EXIT_AUTH
    if status in (429, 503):
        return EXIT_THROTTLED
    if 400 <= status < 500:
        return EXIT_REFUSED
    return EXIT_RUN_FAILED


def _fail(code: int, message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


T = TypeVar("T")


def _call(function: Callable[[], T]) -> T:
    """Runs one API call; turns its failures into a message and the outcome's exit code."""
    try:
        return function()
    except errors.SkyMarshalError as exc:
        _fail(_exit_for(exc), str(exc))
    except NoCredentials as exc:
        _fail(EXIT_AUTH, str(exc))
    except BotoCoreError as exc:  # an expired SSO session, a profile that does not exist
        _fail(EXIT_AUTH, f"{exc} (for SSO: aws sso login --profile NAME)")
    except httpx.HTTPError as exc:
        _fail(EXIT_UNREACHABLE, f"{type(exc).__name__}: {exc}")


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        raw = getattr(value, "raw", None)
        return raw if raw else asdict(value)
    return value


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(_plain(value), indent=2, default=str) + "\n")


def _print_decision(result: InvokeResponse) -> None:
    colour = {"approved": "green", "rejected": "red"}.get(result.final_decision, "yellow")
    out.print(f"Decision: [bold {colour}]{result.final_decision}[/]")
    for number, item in enumerate(result.recommendations, start=1):
        text = item if isinstance(item, str) else json.dumps(item)
        out.print(f"  {number}. {text}", highlight=False)
    out.print(
        f"[dim]session {result.session_id} · request {result.request_id} · "
        f"{result.execution_time_ms} ms[/]"
    )


@app.callback()
def main_options(
    ctx: typer.Context,
    url: Annotated[
        str,
        typer.Option(
            envvar="SKYMARSHAL_API_URL",
            help="The API's base URL: a stage's https://ID.execute-api.REGION.amazonaws.com/STAGE"
            " or the local stack's.",
        ),
    ] = DEFAULT_URL,
    profile: Annotated[
        str | None, typer.Option(help="AWS profile (SSO or keys); default: the AWS chain.")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="Signing region (default: the URL's, else the profile's).")
    ] = None,
) -> None:
    ctx.obj = Options(url=url, profile=profile, region=region)


@app.command()
def invoke(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(help="The disruption, e.g. 'Flight BA117 …'.")],
    session_id: Annotated[str | None, typer.Option(help="Continue this session.")] = None,
    enqueue: Annotated[
        bool, typer.Option(help="Wait behind a run already active on the session.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Assess a disruption: the agents' progress as they complete, then the decision and
    the recommendations."""
    on_conflict = "enqueue" if enqueue else None
    with _client(ctx) as client:
        if as_json:
            result = _call(
                lambda: client.invoke(prompt, session_id=session_id, on_conflict=on_conflict)
            )
            _print_json(result)
            return
        final = _call(lambda: _follow_invoke(client, prompt, session_id, on_conflict))
    _print_decision(final)


def _follow_invoke(
    client: Client, prompt: str, session_id: str | None, on_conflict: str | None
) -> InvokeResponse:
    events = client.invoke_stream(prompt, session_id=session_id, on_conflict=on_conflict)
    complete = _show_progress(events)
    return InvokeResponse.from_dict(complete.data)


def _show_progress(events: Iterator[Event]) -> Event:
    """Shows each agent as it completes; returns the final event."""
    final: Event | None = None
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} agents"),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("assessing", total=AGENTS)
        for event in events:
            if event.event == "chunk" and isinstance(event.data, dict):
                agent = event.agent or "?"
                if event.data.get("status") == "completed":
                    partial = event.data.get("partial_result") or {}
                    verdict = partial.get("status", "") if isinstance(partial, dict) else ""
                    progress.console.print(
                        f"  [green]✓[/] {agent} ({event.data.get('phase', '')}) {verdict}"
                    )
                    progress.advance(task)
                else:
                    progress.update(task, description=f"{agent} analyzing")
            if event.final:
                final = event
    if final is None:
        raise errors.StreamInterrupted("the stream ended before the run's result")
    return final


@runs_app.command("submit")
def runs_submit(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument()],
    session_id: Annotated[str | None, typer.Option()] = None,
    enqueue: Annotated[bool, typer.Option()] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Default: a new UUID (sent on every retry).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start a background run; prints its request id."""
    with _client(ctx) as client:
        run = _call(
            lambda: client.submit(
                prompt,
                session_id=session_id,
                on_conflict="enqueue" if enqueue else None,
                idempotency_key=idempotency_key,
            )
        )
    if as_json:
        _print_json(run)
    else:
        sys.stdout.write(run.request_id + "\n")


def _run_outcome(run: Invocation, as_json: bool) -> None:
    if as_json:
        _print_json(run)
    elif run.status == "succeeded" and run.result is not None:
        _print_decision(run.result)
    else:
        out.print(f"{run.request_id}: {run.status}", highlight=False)
        if run.error:
            out.print(json.dumps(run.error), highlight=False)
    raise typer.Exit(STATUS_EXIT.get(run.status, EXIT_OK))


@runs_app.command("wait")
def runs_wait(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument()],
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 900.0,
    poll: Annotated[
        float, typer.Option(help="Seconds of each long-poll (at most 25).", min=0.5, max=25)
    ] = 20.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Wait until the run ends (repeated long-polls); exit code by its status."""
    with _client(ctx, long_poll_seconds=poll) as client:
        run = _call(lambda: client.wait(request_id, timeout=timeout))
    _run_outcome(run, as_json)


@runs_app.command("get")
def runs_get(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A run's status (and result once it has ended)."""
    with _client(ctx) as client:
        run = _call(lambda: client.get(request_id))
    if run.final:
        _run_outcome(run, as_json)
    if as_json:
        _print_json(run)
    else:
        out.print(f"{run.request_id}: {run.status}", highlight=False)


@runs_app.command("events")
def runs_events(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument()],
    after: Annotated[int | None, typer.Option(help="Start after this event id.")] = None,
) -> None:
    """The run's events, one JSON object a line, until it ends (resumed after drops)."""

    def follow() -> Event | None:
        last: Event | None = None
        for event in client.events(request_id, after=after):
            sys.stdout.write(json.dumps(asdict(event)) + "\n")
            sys.stdout.flush()
            last = event
        return last

    with _client(ctx) as client:
        last = _call(follow)
    if last is not None and last.event == "error" and isinstance(last.data, dict):
        raise typer.Exit(_exit_for(errors.error_for(last.data.get("error_code"))("")))


@runs_app.command("cancel")
def runs_cancel(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Cancel a queued or running run."""
    with _client(ctx) as client:
        run = _call(lambda: client.cancel(request_id))
    if as_json:
        _print_json(run)
    else:
        out.print(f"{run.request_id}: {run.status}", highlight=False)


@sessions_app.command("list")
def sessions_list(
    ctx: typer.Context,
    active: Annotated[bool | None, typer.Option("--active/--expired")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Your sessions, most recently used first (every page)."""
    with _client(ctx) as client:
        sessions = _call(lambda: list(client.sessions(active=active)))
    if as_json:
        _print_json([s.raw for s in sessions])
        return
    table = Table("session", "interactions", "last used (ms since epoch)", "expired")
    for summary in sessions:
        table.add_row(
            summary.session_id,
            str(summary.interaction_count),
            str(summary.last_interaction_at),
            "yes" if summary.expired else "",
        )
    out.print(table)


@sessions_app.command("show")
def sessions_show(
    ctx: typer.Context,
    session_id: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One session with all its interactions."""
    with _client(ctx) as client:
        history = _call(lambda: client.session(session_id))
    if as_json:
        _print_json({**history.raw, "interactions": [i.raw for i in history.interactions]})
        return
    out.print(
        f"Session {history.session_id}: {history.interaction_count} interaction(s)"
        + (" (expired)" if history.expired else ""),
        highlight=False,
    )
    for interaction in history.interactions:
        decision = (interaction.response or {}).get("final_decision", "")
        out.print(
            f"- {interaction.request_id} {interaction.status} {decision}: {interaction.prompt}",
            highlight=False,
        )


@app.command()
def whoami(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Who the API takes you to be (checks your signing)."""
    with _client(ctx) as client:
        identity = _call(client.identity)
    if as_json:
        _print_json(identity)
    else:
        out.print(f"{identity.principal} ({identity.authenticated_by})", highlight=False)


@app.command()
def proxy(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one).")] = 8765,
    open_browser: Annotated[bool, typer.Option("--open/--no-open")] = False,
) -> None:
    """A signing proxy on 127.0.0.1 for the browser: the browsable API, Swagger UI and
    Redoc of the API at --url, every request signed with your credentials."""
    from skymarshal_client.proxy import SigningProxy

    options: Options = ctx.obj
    credentials = _credentials(options)
    identity = _call(
        lambda: AwsIdentity(
            url=options.url,
            profile=options.profile,
            region=options.region,
            credentials=credentials,
        )
    )
    _call(identity.frozen)  # fail now, not on the first page
    server = SigningProxy(options.url, identity, port=port)
    out.print(f"Signing proxy for {options.url} (region {identity.region}).", highlight=False)
    out.print("Open (the link carries this proxy's token):", highlight=False)
    sys.stdout.write(server.open_url + "\n")
    sys.stdout.flush()
    if open_browser:
        import webbrowser

        webbrowser.open(server.open_url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()


def main() -> None:
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:
        err.print(f"error: {type(exc).__name__}: {exc}", highlight=False, markup=False)
        sys.exit(EXIT_FAILURE)


if __name__ == "__main__":
    main()
