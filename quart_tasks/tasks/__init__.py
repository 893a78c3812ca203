"""Tasks: the resource, its queries and its routes."""
