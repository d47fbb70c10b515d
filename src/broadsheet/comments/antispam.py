"""Anti-automation guards (being written): honeypot, form timestamp, rate limits, flood,
duplicate. Until then each lets everything through."""


def honeypot(sub):
    return None


def form_timestamp(sub):
    return None


def rate_limits(sub):
    return None


def flood(sub):
    return None


def duplicate(sub):
    return None


def issue_form_token(thread) -> str:
    return ""
