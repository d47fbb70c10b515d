from allauth.socialaccount.providers.oauth2.urls import default_urlpatterns

from .provider import StrictGoogleProvider

urlpatterns = default_urlpatterns(StrictGoogleProvider)
