"""What operators query: health, readiness and metrics (the middleware is in `web`)."""
