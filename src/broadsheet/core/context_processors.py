from django.conf import settings


def site(request):
    return {"site_name": settings.WAGTAIL_SITE_NAME, "base_url": settings.BROADSHEET_BASE_URL}
