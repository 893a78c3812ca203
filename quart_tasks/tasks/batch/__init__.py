"""The batch endpoint: many commands in one unit of work (`POST /api/tasks/batch`)."""
