from django.db import models


class MastodonApp(models.Model):
    """The client Broadsheet registered at one Mastodon instance (``POST /api/v1/apps``), made
    on the first sign-in from that instance and reused afterwards."""

    # IDNA (ASCII), lower case, "host" or, in tests, "host:port".
    domain = models.CharField(max_length=255, unique=True)
    client_id = models.CharField(max_length=255)
    client_secret = models.CharField(max_length=255)
    redirect_uri = models.CharField(max_length=500)
    scopes = models.CharField(max_length=200)
    # The instance's issuer identifier (RFC 8414 metadata), compared with any ``iss`` it sends.
    issuer = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Mastodon instance"

    def __str__(self) -> str:
        return self.domain
