"""Tests of `tasks/log/`: events, their positions, and announcing them."""
