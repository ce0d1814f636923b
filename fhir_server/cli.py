"""The `fhir-server` command."""

from __future__ import annotations

import json
import pathlib
import sys
import urllib.error
import urllib.request

import click

from .settings import Settings


@click.group()
def main() -> None:
    """FHIR R4 server for Russian healthcare."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=None, type=int, help="Worker processes (default: 1 embedded, 2 with MongoDB).")
@click.option("--threads", default=8, show_default=True, type=int, help="Threads per worker process.")
@click.option("--demo/--no-demo", default=None, help="Load the demo medical card at start (embedded store).")
def serve(host: str, port: int, workers: int | None, threads: int, demo: bool | None) -> None:
    """Run the server under gunicorn."""
    from gunicorn.app.base import BaseApplication

    settings = Settings()
    if demo is not None:
        settings = settings.model_copy(update={"demo": demo})
    if settings.embedded:
        if workers not in (None, 1):
            raise click.UsageError(
                "the embedded store lives inside one process: use --workers 1, or set FHIR_MONGODB_URI for several"
            )
        workers = 1
    elif workers is None:
        workers = 2

    class _App(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 120)
            self.cfg.set("accesslog", None)

        def load(self):
            from .app import create_app

            return create_app(settings)

    mode = "embedded in-process store" if settings.embedded else "MongoDB"
    click.echo(f"FHIR base: http://{host}:{port}/fhir  ({mode}, {workers} worker process(es) x {threads} threads)", err=True)
    if settings.demo:
        click.echo(f"Demo card: curl http://{host}:{port}/fhir/Patient/demo-patient-1/_history", err=True)
    _App().run()


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option("--url", default=None, help="Base URL of a running server (e.g. http://127.0.0.1:8080/fhir).")
def load(files: tuple[pathlib.Path, ...], url: str | None) -> None:
    """Load batch/transaction Bundles: through a running server (--url) or into FHIR_MONGODB_URI."""
    settings = Settings()
    if url is None and settings.embedded:
        raise click.UsageError("give --url of a running server, or set FHIR_MONGODB_URI (the embedded store lives in the server process)")
    failures = 0
    if url is not None:
        for path in files:
            status, body = _post(url.rstrip("/"), path.read_bytes())
            failures += _report(path, status, body)
    else:
        from .app import create_app

        client = create_app(settings).test_client()
        for path in files:
            r = client.post("/fhir", data=path.read_bytes(), headers={"Content-Type": "application/fhir+json"})
            failures += _report(path, r.status_code, r.get_json(silent=True) or {})
    sys.exit(1 if failures else 0)


def _post(base: str, data: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(base, data=data, method="POST", headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"})
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _report(path: pathlib.Path, status: int, body: dict) -> int:
    failed = [e for e in body.get("entry", []) if not str(e.get("response", {}).get("status", "")).startswith(("2", "3"))]
    if status >= 400 or failed:
        issues = body.get("issue") or [i for e in failed for i in e.get("response", {}).get("outcome", {}).get("issue", [])]
        click.echo(f"{path}: HTTP {status}, {len(failed)} failed entries: {issues[:3]}", err=True)
        return 1
    click.echo(f"{path}: {len(body.get('entry', []))} entries OK")
    return 0


if __name__ == "__main__":
    main()
