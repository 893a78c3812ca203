"""The event log: every task change's event, the positions readers resume from, and its upkeep."""
