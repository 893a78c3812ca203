"""Tests of auth: login, tokens, sessions and their cache, login limits."""
