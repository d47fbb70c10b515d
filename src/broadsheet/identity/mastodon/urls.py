from django.urls import path

from . import views

urlpatterns = [
    path("mastodon/login/", views.login, name="mastodon_login"),
    path("mastodon/<str:instance>/login/callback/", views.callback, name="mastodon_callback"),
]
