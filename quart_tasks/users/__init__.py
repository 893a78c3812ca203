"""Users: registration, the caller's own account, the admins' list, and the first admin."""
