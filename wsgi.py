"""gunicorn entry point: `gunicorn wsgi:app` (embedded store: one worker process)."""

from fhir_server.app import create_app

app = create_app()
