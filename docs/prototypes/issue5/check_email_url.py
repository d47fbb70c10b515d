"""dj-email-url 1.0.6 on the issue's EMAIL_URL forms."""
import sys; sys.path.insert(0, "/tmp/issue5/site")
import dj_email_url
for u in ["smtp://user:p%40ss@mail.example:2525", "smtp+tls://u:p@mail.example:587", "smtp+ssl://u:p@mail.example:465", "console://", "submission://u:p@mail.example"]:
    print(u, "->", {k: v for k, v in dj_email_url.parse(u).items() if v not in (None, "", False)})
