"""A development stand: the ESIA emulator and the server's ESIA settings, with keys and
certificates made at run time (never in the repository).

    run_in_thread(app, host, port) -> (server, url)     a werkzeug server in a daemon thread (no access log)
    serve_forever(app, host, port)                      the same in this thread
    make_stand(...) -> Stand                             fresh client and emulator keys, the emulator
    Stand.settings_update(url)                           FHIR_ESIA_* values for the server (PEM text)
    Stand.write(directory, url)                          the same as files + an env file (`fhir-server esia-emulator`)
    demo_settings(settings, host)                        `serve --demo`: the emulator in-process
"""

from __future__ import annotations

import os
import pathlib
import sys
import threading
from dataclasses import dataclass

from pydantic import SecretStr
from werkzeug.serving import WSGIRequestHandler, make_server

from . import pki
from .emulator import Emulator, create_emulator, make_emulator

DEMO_CLIENT_ID = "FHIRSERVER-DEMO"


class _QuietHandler(WSGIRequestHandler):
    """No access log: the emulator's URLs carry oids, codes and signatures."""

    def log_request(self, code="-", size="-"):
        pass


def serve_forever(app, host: str, port: int) -> None:
    """Serve the emulator in this thread (the `fhir-server esia-emulator` command)."""
    make_server(host, port, app, threaded=True, request_handler=_QuietHandler).serve_forever()


def run_in_thread(app, host: str = "127.0.0.1", port: int = 0):
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    threading.Thread(target=server.serve_forever, name=f"esia-emulator-{server.server_port}", daemon=True).start()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return server, f"http://{shown}:{server.server_port}"


@dataclass
class Stand:
    client_id: str
    client: pki.Signer | None  # None when the client's certificate came from elsewhere
    emulator: Emulator

    def settings_update(self, url: str) -> dict:
        return {
            "esia_url": url,
            "esia_client_id": self.client_id,
            "esia_key": SecretStr(self.client.pkcs8_pem()),
            "esia_certificate": self.client.certificate.pem,
            "esia_verify_certificate": self.emulator.signer.certificate.pem,
        }

    def write(self, directory: pathlib.Path, url: str) -> pathlib.Path:
        """Write the emulator's key and certificate (and the client's, when generated) to
        `directory`; returns the env file that points the server at them. A later
        `make_stand(..., directory=...)` reuses them, so a running server stays valid."""
        directory.mkdir(parents=True, exist_ok=True)
        _write_key(directory / "esia-emulator.key.pem", self.emulator.signer)
        esia_cert = directory / "esia-emulator.cert.pem"
        esia_cert.write_text(self.emulator.signer.certificate.pem)
        lines = [f"FHIR_ESIA_URL={url}", f"FHIR_ESIA_CLIENT_ID={self.client_id}", f"FHIR_ESIA_VERIFY_CERTIFICATE={esia_cert}"]
        if self.client is not None:
            key = directory / "client.key.pem"
            _write_key(key, self.client)
            cert = directory / "client.cert.pem"
            cert.write_text(self.client.certificate.pem)
            lines += [f"FHIR_ESIA_KEY={key}", f"FHIR_ESIA_CERTIFICATE={cert}"]
        env = directory / "server.env"
        env.write_text("\n".join(lines) + "\n")
        return env


def _write_key(path: pathlib.Path, signer: pki.Signer) -> None:
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    path.write_text(signer.pkcs8_pem())


def _reuse(directory: pathlib.Path | None, name: str, kind: str) -> pki.Signer | None:
    """A key and certificate written before to `directory` (of the wanted kind), else None."""
    if directory is None or not (directory / f"{name}.key.pem").is_file() or not (directory / f"{name}.cert.pem").is_file():
        return None
    signer = pki.load_signer(str(directory / f"{name}.key.pem"), str(directory / f"{name}.cert.pem"))
    return signer if signer.kind == kind else None


def make_stand(client_id: str, *, client_kind: str = "gost", token_kind: str = "rsa", client_certificate=None, persons_file=None,
               directory: pathlib.Path | None = None) -> Stand:
    """The emulator for one client. Keys are made now, or reused from `directory` (see Stand.write)."""
    if client_certificate is not None:
        client, cert = None, pki.load_certificate(client_certificate)
    else:
        client = _reuse(directory, "client", client_kind) or pki.self_signed(client_kind, client_id)
        cert = client.certificate
    emulator = make_emulator({client_id: cert}, persons_file=persons_file, token_kind=token_kind)
    emulator.signer = _reuse(directory, "esia-emulator", token_kind) or emulator.signer
    return Stand(client_id, client, emulator)


def demo_settings(settings, host: str = "127.0.0.1"):
    """`serve --demo` without FHIR_ESIA_URL: start the emulator in this process (on
    FHIR_ESIA_EMULATOR_PORT) and return the settings pointing the server at it."""
    if not settings.demo or settings.esia_url or not settings.esia_emulator_port or settings.auth != "smart":
        return settings
    stand = make_stand(DEMO_CLIENT_ID)
    try:
        _, url = run_in_thread(create_emulator(stand.emulator), host, settings.esia_emulator_port)
    except (OSError, SystemExit):  # the port is taken (werkzeug exits on EADDRINUSE): the demo runs on without ESIA
        print(f"\nGosuslugi sign-in is off: the ESIA emulator cannot listen on port {settings.esia_emulator_port}; "
              "set FHIR_ESIA_EMULATOR_PORT to a free port\n", file=sys.stderr, flush=True)
        return settings
    # Printed, not logged, like the demo accounts: the console of `make run` is where a developer looks.
    people = ", ".join(f"{p['lastName']} {p['firstName']} ({'подтверждённая' if p.get('trusted') else 'неподтверждённая'})"
                       for p in stand.emulator.persons)
    print(f"\nGosuslugi sign-in: ESIA emulator at {url} (keys made now); test persons: {people}\n", file=sys.stderr, flush=True)
    return settings.model_copy(update=stand.settings_update(url))
