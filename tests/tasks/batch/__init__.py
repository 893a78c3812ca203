"""Tests of `tasks/batch/`: the batch endpoint."""
