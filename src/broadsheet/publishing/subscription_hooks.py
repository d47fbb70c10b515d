"""New-post notifications (being written)."""


def connect() -> None:
    pass
