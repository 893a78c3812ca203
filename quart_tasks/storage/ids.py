"""Primary key types shared by the tables."""

from sqlalchemy import BigInteger, Integer

# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the autoincrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")
MAX_BIG_ID = 2**63 - 1
