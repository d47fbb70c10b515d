"""The "Leave a Reply" form: field rules only (lengths, formats). Thread rules live in services.

The field rules are functions, so the moderators' edit form applies the very same ones.
"""

from __future__ import annotations

from django import forms

from broadsheet.core.html import safe_url

from .models import DB_INT_MAX, EMAIL_MAX, NAME_MAX, TEXT_MAX, URL_MAX

TEXT_MAX_BYTES = 65535  # MySQL TEXT, as WordPress stores comments


def check_length(label: str, value: str, limit: int) -> str:
    """Lengths are checked on what will be stored and reported: never cut silently."""
    if len(value) > limit:
        raise forms.ValidationError(
            f"{label} is too long: {len(value):,} characters; the limit is {limit:,}."
        )
    return value


def clean_text(text: str) -> str:
    if not text.strip():
        raise forms.ValidationError("Please type your comment.")
    size = len(text.encode("utf-8"))
    if size > TEXT_MAX_BYTES:
        raise forms.ValidationError(
            f"Your comment is too long: {size:,} bytes; the limit is {TEXT_MAX_BYTES:,} bytes."
        )
    return check_length("Your comment", text, TEXT_MAX)


def clean_name(name: str) -> str:
    return check_length("Your name", name, NAME_MAX)


def clean_website(url: str) -> str:
    """An http(s) address (``https://`` added when no scheme was typed), or ""."""
    url = url.strip()
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
    return check_length("Your website address", url, URL_MAX)


class CommentForm(forms.Form):
    # Django's CharField refuses NUL characters (PostgreSQL text cannot hold them).
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
    # Anti-automation, invisible to people: a field only robots fill in, and the signed time
    # the form was handed out (from the session endpoint, so the page itself stays cacheable).
    website2 = forms.CharField(required=False, strip=False)
    form_token = forms.CharField(required=False, max_length=300)
    subscribe_thread = forms.BooleanField(required=False)
    subscribe_posts = forms.BooleanField(required=False)

    def __init__(self, *args, require_identity: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not require_identity:  # signed-in readers (issue 3) need not type name and email
            self.fields["email"].required = False
            self.fields["author"].required = False

    def clean_comment(self) -> str:
        return clean_text(self.cleaned_data["comment"])

    def clean_author(self) -> str:
        return clean_name(self.cleaned_data["author"])

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if not email:
            return email
        check_length("Your email address", email, EMAIL_MAX)
        try:
            forms.EmailField().clean(email)
        except forms.ValidationError:
            raise forms.ValidationError(
                "Please enter a valid email address, like name@example.org."
            ) from None
        return email

    def clean_url(self) -> str:
        return clean_website(self.cleaned_data["url"])
