"""``edgetts serve``: the HTTP service (edgetts/serving/http.py) on uvicorn.

First-use work (converting the ladder, a quick profile) happens before the server listens; the
warm-up (tokenizers, sessions, one step per model) runs while it listens, with /health
answering 503 until it is done, as llama.cpp's server does while it loads.
"""

from __future__ import annotations

import ipaddress

import click

from .errors import EdgeTTSError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--models", "names", help="Plan over these store entries (default: the built-in ladder).")
@click.option("--threads", type=click.IntRange(min=1), help="Intra-op threads (default: physical cores).")
@click.option("--eval", "eval_set", default="gsm8k", show_default=True, help="Whose calibration to maximise.")
@click.option(
    "--api-key",
    envvar="EDGETTS_API_KEY",
    help="Require 'Authorization: Bearer KEY' (also $EDGETTS_API_KEY); needed off loopback.",
)
@click.option("--log-level", default="info", show_default=True, help="uvicorn's log level.")
@click.option(
    "--auto-reprofile/--no-auto-reprofile",
    default=False,
    show_default=True,
    help="When a model's latency correction drifts, profile it again (--quick) in the gaps between requests.",
)
def serve(
    host: str, port: int, names: str | None, threads: int | None, eval_set: str, api_key: str | None,
    log_level: str, auto_reprofile: bool,
) -> None:  # fmt: skip
    """Serve /v1/solve, /v1/chat/completions (OpenAI-compatible, plus latency_ms), /v1/models,
    /health and /metrics over HTTP, every deadline counted from the request's arrival."""
    if not is_loopback(host) and not api_key:
        raise EdgeTTSError(
            f"--host {host} is reachable from other machines: set --api-key (or $EDGETTS_API_KEY) "
            "to serve there"
        )
    try:
        import uvicorn

        from .serving.http import create_app
    except ImportError as err:
        raise EdgeTTSError(
            f"the serve extra is not installed ({err.name} is missing): pip install 'edgetts[serve]'"
        ) from None
    from .cli_profile import setup_engine, split_names

    models = split_names(names)
    engine = setup_engine(models, threads, eval_set, auto_reprofile)
    uvicorn.run(create_app(engine, models, api_key), host=host, port=port, log_level=log_level)
