from django.utils.functional import SimpleLazyObject


def chrome(request):
    """The masthead (home link, section navigation) for pages that are not Wagtail pages, such
    as the comment form page. Lazy: nothing is queried unless a template shows it; Wagtail
    pages supply their own through ``chrome_context``."""
    from .models import Section, home_for_request

    return {
        "home_page": SimpleLazyObject(lambda: home_for_request(request)),
        "nav_sections": SimpleLazyObject(lambda: list(Section.objects.in_navigation())),
    }
