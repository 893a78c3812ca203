"""Tests of health, readiness, metrics and operations on real servers."""
