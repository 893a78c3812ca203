"""The web wing: the HTTP conventions every blueprint shares, and the middleware.

Errors and their one JSON shape, body and query-string checks, ETags, pages and
cursors, rate limits, the access markers views declare, the OpenAPI document,
CORS, request ids, access logs, metrics, security headers and trusted proxies.
It may use the storage wing, and knows nothing of tasks, users or auth.
"""
