import time, django
from django.conf import settings
settings.configure(SECRET_KEY="k" * 50); django.setup()
from django.core import signing
from unittest import mock
tok = signing.dumps({"c": 42, "a": "approve", "v": "2026-11-26T10:00:00"}, salt="broadsheet.moderation.approve", compress=True)
print("token", len(tok), tok[:40] + "…")
print("loads ok:", signing.loads(tok, salt="broadsheet.moderation.approve", max_age=3600))
for label, f in [
    ("other salt (spam)", lambda: signing.loads(tok, salt="broadsheet.moderation.spam", max_age=3600)),
    ("flipped byte", lambda: signing.loads(tok[:-3] + ("A" if tok[-3] != "A" else "B") + tok[-2:], salt="broadsheet.moderation.approve")),
    ("expired", lambda: (mock.patch("time.time", return_value=time.time() + 7201).start(), signing.loads(tok, salt="broadsheet.moderation.approve", max_age=7200))[1]),
]:
    try:
        f(); print(label, "-> accepted (!)")
    except signing.SignatureExpired as e:
        print(label, "-> SignatureExpired:", e)
    except signing.BadSignature as e:
        print(label, "-> BadSignature:", type(e).__name__, e)
mock.patch.stopall()
print("SignatureExpired is BadSignature:", issubclass(signing.SignatureExpired, signing.BadSignature))
s = signing.TimestampSigner(salt="broadsheet.comments.form")
v = s.sign("thread=7"); print("TimestampSigner.sign:", v, "| unsign max_age:", s.unsign(v, max_age=60))
