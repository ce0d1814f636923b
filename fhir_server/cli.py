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

    if settings.demo:  # Gosuslugi sign-in through the ESIA emulator, in this process (FHIR_ESIA_EMULATOR_PORT)
        from .esia.stand import demo_settings

        settings = demo_settings(settings, host)
    mode = "embedded in-process store" if settings.embedded else "MongoDB"
    click.echo(f"FHIR base: http://{host}:{port}/fhir  ({mode}, {workers} worker process(es) x {threads} threads)", err=True)
    if settings.demo and settings.auth == "smart":
        click.echo(
            f"Demo card: TOKEN=$(python3 tools/smart_token.py --server http://{host}:{port} --login doctor@demo.example "
            f"--password <below> --access-token); curl -H \"Authorization: Bearer $TOKEN\" "
            f"http://{host}:{port}/fhir/Patient/demo-patient-1",
            err=True,
        )
    elif settings.demo:
        click.echo(f"Demo card: curl http://{host}:{port}/fhir/Patient/demo-patient-1/_history", err=True)
    if settings.demo and settings.demo_patients:
        from seed.demo import DEMO_GRANTED, DEMO_SEED

        auth = ' -H "Authorization: Bearer $TOKEN"' if settings.auth == "smart" else ""
        click.echo(
            f"Demo population: {settings.demo_patients} generated patients (FHIR_DEMO_PATIENTS; `fhir-server seed --seed {DEMO_SEED}`), "
            f"the first {min(DEMO_GRANTED, settings.demo_patients)} granting doctor@demo.example: curl{auth} "
            f"'http://{host}:{port}/fhir/Patient?_sort=family&_count=10'; a generated card: curl{auth} "
            f"'http://{host}:{port}/fhir/Patient/s{DEMO_SEED}-pat-0/$everything'",
            err=True,
        )
    _App().run()


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option("--url", default=None, help="Base URL of a running server (e.g. http://127.0.0.1:8080/fhir).")
@click.option("--token", envvar="FHIR_TOKEN", default=None,
              help="SMART access token sent to --url (default: $FHIR_TOKEN); not needed with FHIR_AUTH=off.")
def load(files: tuple[pathlib.Path, ...], url: str | None, token: str | None) -> None:
    """Load batch/transaction Bundles: through a running server (--url) or into FHIR_MONGODB_URI."""
    settings = Settings()
    if url is None and settings.embedded:
        raise click.UsageError("give --url of a running server, or set FHIR_MONGODB_URI (the embedded store lives in the server process)")
    failures = 0
    if url is not None:
        for path in files:
            status, body = _post(url.rstrip("/"), path.read_bytes(), token)
            failures += _report(path, status, body)
    else:
        from .app import create_app, internal_client

        # Whoever can reach FHIR_MONGODB_URI is already an operator of the database.
        client = internal_client(create_app(settings))
        for path in files:
            r = client.post("/fhir", data=path.read_bytes(), headers={"Content-Type": "application/fhir+json"})
            failures += _report(path, r.status_code, r.get_json(silent=True) or {})
    sys.exit(1 if failures else 0)


@main.command()
@click.option("--patients", default=100, show_default=True, type=click.IntRange(min=0), help="How many patients to generate.")
@click.option("--seed", "seed_", default=1, show_default=True, type=int, help="Same --patients and --seed give the same resources and ids.")
@click.option("--url", default=None, help="Base URL of a running server (e.g. http://127.0.0.1:8080/fhir).")
@click.option("--token", envvar="FHIR_TOKEN", default=None,
              help="SMART access token sent to --url (default: $FHIR_TOKEN); not needed with FHIR_AUTH=off.")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Bundles in flight at once (--url only): for a server with several worker processes.")
def seed(patients: int, seed_: int, url: str | None, token: str | None, concurrency: int) -> None:
    """Generate a synthetic Russian population and load it through POST /fhir transactions: into a running server
    (--url) or into FHIR_MONGODB_URI."""
    from seed.generator import Population
    from seed.load import in_process, load, over_http

    settings = Settings()
    if url is None and settings.embedded:
        raise click.UsageError("give --url of a running server, or set FHIR_MONGODB_URI (the embedded store lives in the server process)")
    if concurrency > 1 and url is None:
        raise click.UsageError("--concurrency needs --url (in process, the Bundles go one after another)")
    if url is not None:
        post = over_http(url, token)
    else:
        from .app import create_app

        # Whoever can reach FHIR_MONGODB_URI is already an operator of the database.
        post = in_process(create_app(settings))

    def progress(r) -> None:
        click.echo(f"  {r.bundles - 1} patients, {r.resources} resources, {r.resources / max(r.seconds, 1e-9):.0f} resources/s", err=True)

    report = load(Population(patients, seed_), post, progress, concurrency=concurrency)
    for line in report.failures[:10]:
        click.echo(f"failed: {line}", err=True)
    counts = ", ".join(f"{t} {n}" for t, n in sorted(report.counts.items()))
    click.echo(f"seed {seed_}: {patients} patients, {report.resources} resources in {report.seconds:.1f} s "
               f"({report.resources / max(report.seconds, 1e-9):.0f} resources/s): {counts}")
    if report.stopped:
        click.echo("stopped: the server was not reached or refused the credentials (see --url, --token)", err=True)
    if report.failures:
        click.echo(f"{len(report.failures)} of {report.bundles} bundles failed (each changed nothing)", err=True)
    sys.exit(1 if report.failures else 0)


def _post(base: str, data: bytes, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base, data=data, method="POST", headers=headers)
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


# -- SMART authorization server: clients and accounts ------------------------------------------
def _auth_records(ctx: click.Context):
    """The authorization server's records in FHIR_MONGODB_URI (tests pass their own in ctx.obj)."""
    obj = ctx.find_object(dict) or {}
    if obj.get("auth_records") is not None:
        return obj["auth_records"]
    settings = Settings()
    if settings.embedded:
        raise click.UsageError(
            "set FHIR_MONGODB_URI: the embedded store lives inside the server process (demo clients and accounts come with --demo)"
        )
    from .auth.models import Records

    return Records.connect(settings)


@main.group()
def clients() -> None:
    """SMART clients: apps (public or confidential) and hospital systems (SMART Backend Services)."""


@clients.command("add")
@click.option("--name", required=True, help="Name shown on the consent page.")
@click.option("--public/--confidential", "public", default=None, help="Public (browser/mobile app, PKCE) or confidential.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Allowed redirect URI (repeatable).")
@click.option("--scope", "scopes", multiple=True, required=True, help="SMART scopes the client may be granted (repeatable or space-separated).")
@click.option("--jwks-file", type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
              help="Public keys (JWKS) for private_key_jwt: a backend-services client (client_credentials).")
@click.option("--organization", default=None, help="Organization/<id> a backend client acts for.")
@click.option("--client-id", default=None, help="Fixed client id (default: random).")
@click.pass_context
def clients_add(ctx, name, public, redirect_uris, scopes, jwks_file, organization, client_id) -> None:
    """Register a client; prints client_id (and, once, client_secret for a confidential client without JWKS)."""
    from .auth.clients import RegistrationError, register_client

    if public is None:
        raise click.UsageError("say --public or --confidential")
    jwks = None
    if jwks_file is not None:
        try:
            jwks = json.loads(jwks_file.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise click.UsageError(f"{jwks_file}: not JSON ({exc})") from None
    try:
        client, secret = register_client(
            _auth_records(ctx), name=name, public=public, redirect_uris=redirect_uris, scope=" ".join(scopes),
            jwks=jwks, organization=organization, client_id=client_id,
        )
    except RegistrationError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"client_id={client.client_id}")
    if secret:
        click.echo(f"client_secret={secret}")
        click.echo("The client secret is shown this once; only its hash is stored.", err=True)


@clients.command("list")
@click.pass_context
def clients_list(ctx) -> None:
    """List the registered clients."""
    for c in _auth_records(ctx).clients():
        s = c.summary()
        click.echo(
            f"{s['client_id']}\t{s['type']}\t{s['token_endpoint_auth_method']}\t{','.join(s['grant_types'])}\t"
            f"{s['organization'] or '-'}\t{s['name']}\t{s['scope']}"
        )


@clients.command("remove")
@click.argument("client_id")
@click.pass_context
def clients_remove(ctx, client_id: str) -> None:
    """Remove a client and revoke every token it holds."""
    if not _auth_records(ctx).remove_client(client_id):
        click.echo(f"no client {client_id}", err=True)
        sys.exit(1)
    click.echo(f"removed {client_id}")


@main.group()
def accounts() -> None:
    """Accounts that sign in at /auth/login."""


@accounts.command("add")
@click.option("--login", required=True, help="E-mail or phone number.")
@click.option("--role", required=True, type=click.Choice(["patient", "practitioner", "staff", "admin"]))
@click.option("--fhir-user", default=None, help="The account's FHIR resource: Patient/<id> for patients, Practitioner/<id> ...")
@click.option("--name", default=None, help="Display name.")
@click.password_option(help="At least 8 characters with upper- and lower-case letters, digits and special characters, no spaces "
                       "at the ends. Asked for when not given (never pass it on a shared machine's command line).")
@click.pass_context
def accounts_add(ctx, login, role, fhir_user, name, password) -> None:
    """Add a local account (password stored as an Argon2id hash)."""
    import re

    if fhir_user is not None and not re.match(r"^(Patient|Practitioner|PractitionerRole|RelatedPerson|Person)/[A-Za-z0-9\-.]{1,64}$", fhir_user):
        raise click.UsageError("--fhir-user must look like Patient/<id> or Practitioner/<id>")
    if role == "patient" and not (fhir_user or "").startswith("Patient/"):
        raise click.UsageError("a patient account needs --fhir-user Patient/<id>")
    try:
        account = _auth_records(ctx).add_account(login, role, password, fhir_user=fhir_user, name=name)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"account {account.login} ({role}) id={account.id}")


# -- audit trail ----------------------------------------------------------------------------------
@main.command()
@click.option("--type", "types", multiple=True, help="Only these resource types (repeatable; default: every supported type).")
@click.pass_context
def reindex(ctx: click.Context, types: tuple[str, ...]) -> None:
    """Recompute the stored search values of FHIR_MONGODB_URI's resources (no new versions):
    after an upgrade that changed search parameters or identifier normalisation."""
    from resources import registry

    from .search import index_resource
    from .storage import open_store

    settings = Settings()
    store = (ctx.find_object(dict) or {}).get("store")  # tests pass the store of their app
    if store is None:
        if settings.embedded:
            raise click.UsageError("set FHIR_MONGODB_URI: the embedded store lives inside the server process and is indexed as it is written")
        store = open_store(settings, registry.supported_types())
    supported = registry.supported_types()
    unknown = [t for t in types if t not in supported]
    if unknown:
        raise click.UsageError(f"not a supported resource type: {', '.join(unknown)}")
    result = store.reindex(types or sorted(supported), lambda r: index_resource(r, settings.base_url))
    click.echo(f"checked {result['checked']} versions, reindexed {result['changed']}")


@main.group()
def audit() -> None:
    """The tamper-evident audit trail."""


@audit.command("verify")
@click.option("--url", default=None, help="Base URL of a running server (e.g. http://127.0.0.1:8080/fhir); needs an admin token.")
@click.option("--token", envvar="FHIR_TOKEN", default=None, help="Admin SMART access token for --url (default: $FHIR_TOKEN).")
def audit_verify(url: str | None, token: str | None) -> None:
    """Prove the AuditEvent hash chain unbroken, or name its first broken link (exit status 1)."""
    if url is not None:
        result = _verify_remote(url.rstrip("/"), token)
    else:
        settings = Settings()
        if settings.embedded:
            raise click.UsageError("give --url of a running server, or set FHIR_MONGODB_URI (the embedded store lives in the server process)")
        from resources import registry

        from . import audit as audit_trail
        from .storage import open_store

        store = open_store(settings, registry.supported_types())
        try:
            found = audit_trail.verify(store)
        finally:
            store.engine.close()
        result = {"result": found["ok"], "checked": found["checked"]}
        if found["broken"]:
            b = found["broken"]
            result.update(brokenSeq=b["seq"], reason=b["reason"])
            if b.get("id"):
                result["brokenEvent"] = f"AuditEvent/{b['id']}"
    if result["result"]:
        click.echo(f"audit chain intact: {result['checked']} events")
        return
    where = f" ({result['brokenEvent']})" if result.get("brokenEvent") else ""
    click.echo(f"audit chain BROKEN at link {result.get('brokenSeq')}{where}: {result.get('reason')}; "
               f"{result['checked']} events before it verify", err=True)
    sys.exit(1)


def _verify_remote(base: str, token: str | None) -> dict:
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"{base}/AuditEvent/$verify-chain", data=b"", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}")
        texts = "; ".join(i.get("diagnostics", "") for i in detail.get("issue", []))
        raise click.ClickException(f"HTTP {exc.code} from {base}: {texts}") from None
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach {base}: {exc.reason}") from None
    out: dict = {}
    for p in body.get("parameter", []):
        value = next((v for k, v in p.items() if k.startswith("value")), None)
        out[p["name"]] = value["reference"] if isinstance(value, dict) else value
    return out


@main.command("esia-emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
@click.option("--client-id", default="FHIRSERVER", show_default=True, help="The client_id (IS mnemonic) the emulator accepts.")
@click.option("--client-certificate", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The client's certificate (PEM/DER); default: a new client key and certificate are made and written to --dir.")
@click.option("--client-kind", type=click.Choice(["gost", "rsa"]), default="gost", show_default=True, help="Key type of a generated client key.")
@click.option("--token-alg", type=click.Choice(["rsa", "gost"]), default="rsa", show_default=True, help="RS256 or GOST3410_2012_256 tokens.")
@click.option("--persons", type=click.Path(exists=True, dir_okay=False), default=None, help="JSON array of test persons (default: built in).")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=pathlib.Path), default=pathlib.Path(".esia-emulator"),
              show_default=True, help="Where the emulator's certificate, generated client keys and server.env are written.")
def esia_emulator(host, port, client_id, client_certificate, client_kind, token_alg, persons, directory) -> None:
    """Run the ESIA (Gosuslugi) emulator for development."""
    from .esia.emulator import create_emulator
    from .esia.stand import make_stand, serve_forever

    try:
        stand = make_stand(client_id, client_kind=client_kind, token_kind=token_alg, client_certificate=client_certificate,
                           persons_file=persons, directory=directory)
    except (ValueError, OSError) as exc:  # pki.PKIError is a ValueError
        raise click.UsageError(str(exc)) from None
    env = stand.write(directory, f"http://{host}:{port}")
    click.echo(f"ESIA emulator at http://{host}:{port}; start the server with its settings: set -a; . {env}; set +a", err=True)
    serve_forever(create_emulator(stand.emulator), host, port)


if __name__ == "__main__":
    main()
