from fixtures import customer, system  # noqa: F401 (pytest finds fixtures by name)
