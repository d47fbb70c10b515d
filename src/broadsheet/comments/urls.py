from django.urls import include, path

from . import moderation_links, own_views, subscription_views, views

app_name = "comments"
urlpatterns = [
    path("post/", views.post_comment, name="post"),
    path("session/", views.session, name="session"),
    path("<int:pk>/", views.permalink, name="permalink"),
    path("respond/<int:thread_id>/", views.respond, name="respond"),
    # Signed links from notification emails: a confirmation page, then a POST.
    path("moderate/", include(moderation_links.urlpatterns)),
    path("subscriptions/", include(subscription_views.urlpatterns)),
    # A commenter's own comment, within the edit window.
    path("own/", include(own_views.urlpatterns)),
]
