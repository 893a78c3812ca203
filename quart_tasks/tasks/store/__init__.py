"""Reading and writing tasks: the portable store, the fast store, and their statements."""
