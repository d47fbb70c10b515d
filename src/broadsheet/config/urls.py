from django.urls import include, path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.documents import urls as wagtaildocs_urls

from broadsheet.core import views as core_views

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("admin/", include(wagtailadmin_urls)),
    path("documents/", include(wagtaildocs_urls)),
    path("accounts/", include("allauth.urls")),
    path("comments/identity/", include("broadsheet.identity.urls")),
    path("comments/", include("broadsheet.comments.urls")),
    path("", include("broadsheet.publishing.urls")),
    path("", include(wagtail_urls)),
]
