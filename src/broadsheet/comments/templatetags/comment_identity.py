from django import template
from django.conf import settings
from django.utils.module_loading import import_string

register = template.Library()


@register.simple_tag(takes_context=True)
def identity_choices(context) -> list:
    """The "click an icon to log in" choices (``COMMENTS_IDENTITY_CHOICES``); the same for
    every reader, so the article page stays cacheable."""
    path = getattr(settings, "COMMENTS_IDENTITY_CHOICES", "")
    request = context.get("request")
    return import_string(path)(request) if path and request is not None else []
