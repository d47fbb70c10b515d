from allauth.socialaccount.providers.oauth2.urls import default_urlpatterns

from .provider import StrictXProvider

urlpatterns = default_urlpatterns(StrictXProvider)
