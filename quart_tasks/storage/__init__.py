"""The storage wing: the engine, sessions, the pool, the straight-on-asyncpg path and ids.

Everything here is about reaching the database, not about what is in it: the
tables are declared by the domain packages on `storage.base.Base`. It imports
no other wing of the package.
"""
