from allauth.socialaccount.providers.oauth2.urls import default_urlpatterns

from .provider import StrictFacebookProvider

urlpatterns = default_urlpatterns(StrictFacebookProvider)
