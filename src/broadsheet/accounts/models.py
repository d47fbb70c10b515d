from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """Our own user model from day one, so adding fields later needs no swap."""

    class Meta:
        db_table = "accounts_user"
