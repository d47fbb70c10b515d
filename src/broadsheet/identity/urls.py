from django.urls import path

from . import views

app_name = "identity"
urlpatterns = [
    path("start/", views.start, name="start"),
    path("done/", views.done, name="done"),
    path("logout/", views.logout, name="logout"),
]
