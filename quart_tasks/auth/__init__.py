"""Authentication: exchanging credentials for an access token."""
