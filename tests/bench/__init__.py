"""Tests of the benchmark scripts themselves (bench/)."""
