"""Discussion settings per site (being written)."""


def settings_for_thread(thread):
    return None
