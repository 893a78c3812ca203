"""Tests of the serving wing: workers, accepts, writes, patches, and real servers under stress."""
