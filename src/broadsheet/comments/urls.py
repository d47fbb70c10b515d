from django.urls import path

from . import views

app_name = "comments"
urlpatterns = [
    path("post/", views.post_comment, name="post"),
    path("session/", views.session, name="session"),
    path("<int:pk>/", views.permalink, name="permalink"),
    path("respond/<int:thread_id>/", views.respond, name="respond"),
]
