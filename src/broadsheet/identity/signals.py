from __future__ import annotations

from allauth.account.signals import user_logged_in
from django.dispatch import receiver

from . import services


@receiver(user_logged_in)
def remember_identity(sender, request, user, sociallogin=None, **kwargs) -> None:
    services.remember(request, user, sociallogin)
