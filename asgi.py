"""The ASGI entry point, for `hypercorn asgi:app` or any other ASGI server.

`quart-tasks serve` is the supported way to run the service. It also installs the
worker patches (`quart_tasks/serving/patches.py`) and supervises the workers; under
another server the app lacks them: a dead worker is not replaced, connections are
not shared evenly between workers, a connection its client closed stays open until
the keep-alive timeout, a 413 sent before its body has arrived can reach the client
as a reset, a response's head and body go out in two writes (three over HTTP/2),
event streams are not ended at shutdown (the server waits out its graceful timeout),
a stopping worker drops its keep-alive connections instead of answering what
arrives on them, and every event goes through each stream's ASGI send path (about
five times the CPU per subscriber, twice the memory).
The README's Deployment section says the same.
"""

from quart_tasks import create_app

app = create_app()
