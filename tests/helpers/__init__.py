"""What the tests share: apps and settings, users, real servers, streams, statements."""
