"""Tests of `tasks/store/`: both stores, their statements and what they gather."""
