"""Tests of the storage wing: engines, sessions, the pool, the asyncpg path, migrations, outages."""
