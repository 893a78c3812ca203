"""What operators need: health, readiness, metrics, request logs, security headers."""
