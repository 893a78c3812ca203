"""The ASGI entry point: `hypercorn asgi:app`."""

from quart_tasks import create_app

app = create_app()
