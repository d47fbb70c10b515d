"""Akismet guard (being written)."""


def akismet_guard(sub):
    return None
