"""quart-tasks: an async REST API for tasks."""

from importlib.metadata import version

from quart_tasks.app import create_app

__version__ = version("quart-tasks")

__all__ = ["__version__", "create_app"]
