import os, sys, time, threading
sys.path[:0] = ["/tmp/issue5/site", "/tmp/issue5/tproj", "/work/main"]
os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
from tests.mailbox import Mailbox
import django; django.setup()
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django_tasks_db.models import DBTaskResult
from outboxapp import tasks
DBTaskResult.objects.all().delete()
with Mailbox() as box:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", box.port, 10
    t = time.perf_counter()
    with transaction.atomic():
        for i in range(1000):
            tasks.send_one.enqueue(i)
    t_enq = time.perf_counter() - t
    t = time.perf_counter()
    call_command("db_worker", "--backend", "outbox", "--queue-name", "mail", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    t_drain = time.perf_counter() - t
    box.wait_for(1000)
    print(f"enqueue 1000 in one transaction: {t_enq:.2f} s; one db_worker drains 1000 (one SMTP connection per message): {t_drain:.1f} s "
          f"({1000/t_drain:.0f}/s); delivered {len(box.messages)}; statuses {dict((s, DBTaskResult.objects.filter(status=s).count()) for s in ('SUCCESSFUL','FAILED'))}")
