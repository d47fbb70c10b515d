"""The "Leave a Reply" form: field rules only (lengths, formats). Thread rules live in services."""

from __future__ import annotations

from django import forms
from django.core.validators import ProhibitNullCharactersValidator

from broadsheet.core.html import safe_url

from .models import DB_INT_MAX, EMAIL_MAX, NAME_MAX, TEXT_MAX, URL_MAX


def _length_error(label: str, limit: int, value: str) -> str:
    return f"{label} is too long: {len(value):,} characters; the limit is {limit:,}."


class CommentForm(forms.Form):
    """Checks every field's length on what will be stored (characters; for the comment also
    UTF-8 bytes, the MySQL TEXT limit WordPress has) and reports it: never cut silently."""

    comment = forms.CharField(
        label="Comment",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 45}),
        error_messages={"required": "Please type your comment."},
    )
    email = forms.CharField(
        label="Email",
        error_messages={"required": "Please enter your email address."},
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    author = forms.CharField(
        label="Name",
        error_messages={"required": "Please enter your name."},
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    url = forms.CharField(
        label="Website",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "url", "inputmode": "url"}),
    )
    thread = forms.IntegerField(min_value=1, max_value=DB_INT_MAX, widget=forms.HiddenInput)
    comment_parent = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=DB_INT_MAX,
        widget=forms.HiddenInput,
        error_messages={"invalid": "The comment you are replying to does not exist."},
    )
    submission_key = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, require_identity: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not require_identity:  # signed-in readers (issue 3) need not type name and email
            self.fields["email"].required = False
            self.fields["author"].required = False
        for field in self.fields.values():
            if isinstance(field, forms.CharField) and not any(
                isinstance(v, ProhibitNullCharactersValidator) for v in field.validators
            ):
                field.validators.append(ProhibitNullCharactersValidator())

    @staticmethod
    def _check_length(label: str, value: str, limit: int) -> str:
        if len(value) > limit:
            raise forms.ValidationError(_length_error(label, limit, value))
        return value

    def clean_comment(self) -> str:
        text = self.cleaned_data["comment"]
        if not text.strip():
            raise forms.ValidationError("Please type your comment.")
        # The byte ceiling is MySQL TEXT's 65,535 bytes, as WordPress stores it.
        if len(text.encode("utf-8")) > 65535:
            raise forms.ValidationError(
                f"Your comment is too long: {len(text.encode('utf-8')):,} bytes; the limit is "
                "65,535 bytes."
            )
        return self._check_length("Your comment", text, TEXT_MAX)

    def clean_author(self) -> str:
        name = self.cleaned_data["author"]
        return self._check_length("Your name", name, NAME_MAX)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if not email:
            return email
        self._check_length("Your email address", email, EMAIL_MAX)
        try:
            forms.EmailField().clean(email)
        except forms.ValidationError:
            raise forms.ValidationError(
                "Please enter a valid email address, like name@example.org."
            ) from None
        return email

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        if not url:
            return ""
        if "://" not in url and not url.startswith("//"):
            url = "https://" + url
        try:
            url = forms.URLField(assume_scheme="https").clean(url)
        except forms.ValidationError:
            url = ""
        if not safe_url(url):
            raise forms.ValidationError(
                "Please enter a web address starting with http:// or https://, "
                "like https://example.org."
            )
        # Measured on what will be stored, after any scheme was added.
        return self._check_length("Your website address", url, URL_MAX)
