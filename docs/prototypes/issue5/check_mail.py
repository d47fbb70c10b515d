"""Django 5.2 mail facts: header injection, RFC 8058 headers, multipart, Message-ID, SMTP faults."""
import asyncio, socket, threading, time, smtplib, email
from email import policy
import django
from django.conf import settings
settings.configure(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
                   EMAIL_PORT=0, EMAIL_TIMEOUT=2, DEFAULT_FROM_EMAIL="Broadsheet <noreply@blog.test>")
django.setup()
from django.core.mail import EmailMultiAlternatives, BadHeaderError, get_connection
from django.core.mail.message import make_msgid
print("django", django.get_version())

def build(**kw):
    m = EmailMultiAlternatives(**{"subject": "New comment", "body": "text part", "to": ["a@blog.test"], **kw})
    m.attach_alternative("<p>html part</p>", "text/html")
    return m

for label, kw in [
    ("CRLF in subject", {"subject": "Hi\r\nBcc: victim@evil.test"}),
    ("LF in subject", {"subject": "Hi\nBcc: victim@evil.test"}),
    ("CRLF in from display name", {"from_email": "Eve\r\nBcc: v@evil.test <noreply@blog.test>"}),
    ("CRLF in reply_to", {"reply_to": ["x@blog.test\r\nBcc: v@evil.test"]}),
    ("CRLF in extra header", {"headers": {"X-Comment-Author": "Eve\r\nBcc: v@evil.test"}}),
]:
    try:
        msg = build(**kw).message()
        raw = msg.as_bytes()
        print(f"{label}: built; Bcc header present = {b'Bcc:' in raw}")
    except BadHeaderError as e:
        print(f"{label}: BadHeaderError: {e}")
    except Exception as e:
        print(f"{label}: {type(e).__name__}: {e}")

mid = make_msgid(domain="blog.test")
m = build(headers={"List-Unsubscribe": "<https://blog.test/u/TOKEN/>, <mailto:unsubscribe@blog.test?subject=TOKEN>",
                   "List-Unsubscribe-Post": "List-Unsubscribe=One-Click", "Message-ID": mid})
parsed = email.message_from_bytes(m.message().as_bytes(), policy=policy.default)
print("content-type:", parsed.get_content_type(), [p.get_content_type() for p in parsed.iter_parts()])
print("List-Unsubscribe:", parsed["List-Unsubscribe"]); print("List-Unsubscribe-Post:", parsed["List-Unsubscribe-Post"])
print("Message-ID kept:", parsed["Message-ID"] == mid, "| count of Message-ID headers:", len(parsed.get_all("Message-ID")))

# SMTP faults against loopback servers
from aiosmtpd.controller import Controller
class H:
    def __init__(self, code): self.code, self.got = code, []
    async def handle_DATA(self, server, session, envelope):
        if self.code: return self.code
        self.got.append(envelope.content); return "250 OK"
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def send(port, timeout=2):
    conn = get_connection(host="127.0.0.1", port=port, timeout=timeout)
    t = time.perf_counter()
    try:
        n = build(headers={"Message-ID": mid}).__class__  # noqa
        msg = build(headers={"Message-ID": mid}); msg.connection = conn
        r = msg.send()
        return f"sent={r}", time.perf_counter() - t
    except Exception as e:
        return f"{type(e).__name__}: {str(e)[:70]}", time.perf_counter() - t

ok = H(None); p1 = free_port(); c1 = Controller(ok, hostname="127.0.0.1", port=p1); c1.start()
print("sink 250:", send(p1), "received", len(ok.got), "| Message-ID on the wire kept:", mid.encode() in ok.got[0])
c1.stop()
bad = H("451 4.3.0 try later"); p2 = free_port(); c2 = Controller(bad, hostname="127.0.0.1", port=p2); c2.start()
print("sink 451:", send(p2)); c2.stop()
print("stopped (refused):", send(free_port()))
# tarpit: accept and never answer
tp = socket.socket(); tp.bind(("127.0.0.1", 0)); tp.listen(5); pt = tp.getsockname()[1]
print("tarpit, EMAIL_TIMEOUT=2:", send(pt, timeout=2))
print("SMTPDataError is SMTPException subclass:", issubclass(smtplib.SMTPDataError, smtplib.SMTPException), "| SMTPException is OSError:", issubclass(smtplib.SMTPException, OSError))
