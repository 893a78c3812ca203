"""The serving wing: what runs Hypercorn and changes how its workers serve.

The supervisor and its workers, how workers share accepted connections, how
connections close and responses are written, and the drain at shutdown. It
knows nothing of the app it serves: no domain, web or storage import.
"""
