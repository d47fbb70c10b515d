"""Local classifier (being written)."""


def classifier_guard(sub):
    return None
