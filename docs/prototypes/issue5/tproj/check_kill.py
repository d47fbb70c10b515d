import os, sys, subprocess, time, signal
sys.path[:0] = ["/tmp/issue5/site", "/tmp/issue5/tproj"]
os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
import django; django.setup()
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult
from outboxapp import tasks
DBTaskResult.objects.all().delete()
tasks.slow.enqueue(1)
env = dict(os.environ, PYTHONPATH="/tmp/issue5/site:/tmp/issue5/tproj")
p = subprocess.Popen([sys.executable, "-m", "django", "db_worker", "--backend", "outbox", "--queue-name", "mail", "--no-startup-delay", "--no-reload", "-v0"], env=env)
for _ in range(50):
    time.sleep(0.2)
    if DBTaskResult.objects.filter(status="RUNNING").exists(): break
os.kill(p.pid, signal.SIGKILL); p.wait()
print("after kill -9:", list(DBTaskResult.objects.values_list("status", flat=True)))
call_command("db_worker", "--backend", "outbox", "--queue-name", "mail", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
print("after a new batch worker:", list(DBTaskResult.objects.values_list("status", "worker_ids")))
