"""System checks for the sign-in configuration (run by `broadsheet check` and at start-up)."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.checks import Error, Tags, register

PROVIDER_ID = re.compile(r"^[a-z0-9_-]{1,64}$")
FORBIDDEN_APP_SETTINGS = ("email_authentication", "verified_email", "uid_field")


@register(Tags.security)
def check_social_providers(app_configs, **kwargs):
    errors = []
    seen: set[str] = set()
    for provider, config in settings.SOCIALACCOUNT_PROVIDERS.items():
        apps = config.get("APPS") or ([config["APP"]] if "APP" in config else [])
        for app in apps:
            sub_id = app.get("provider_id") or provider
            where = f"SOCIALACCOUNT_PROVIDERS[{provider!r}] app {sub_id!r}"
            if not PROVIDER_ID.match(sub_id):
                errors.append(
                    Error(
                        f"{where}: provider_id must be lowercase letters, digits, - or _",
                        id="identity.E001",
                    )
                )
            if sub_id in seen:
                errors.append(Error(f"{where}: provider_id used twice", id="identity.E002"))
            seen.add(sub_id)
            app_settings = app.get("settings") or {}
            for key in FORBIDDEN_APP_SETTINGS:
                if key in app_settings:
                    errors.append(
                        Error(
                            f"{where}: settings.{key} is not allowed (accounts are never linked "
                            "or keyed by an email address or a mutable claim)",
                            id="identity.E003",
                        )
                    )
            if provider == "openid_connect":
                url = str(app_settings.get("server_url", ""))
                if not url:
                    errors.append(
                        Error(f"{where}: settings.server_url is required", id="identity.E004")
                    )
                elif (
                    not url.startswith("https://")
                    and not settings.DEBUG
                    and not getattr(settings, "BROADSHEET_ALLOW_HTTP_PROVIDERS", False)
                ):
                    errors.append(Error(f"{where}: server_url must be https", id="identity.E005"))
    return errors
