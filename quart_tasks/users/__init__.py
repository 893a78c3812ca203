"""Users: accounts, roles and password hashing."""
