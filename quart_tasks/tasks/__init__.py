"""Tasks: the resource, its statements and routes, and the event log every change writes."""
