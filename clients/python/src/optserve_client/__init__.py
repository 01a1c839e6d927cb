"""Python client of optserve."""
