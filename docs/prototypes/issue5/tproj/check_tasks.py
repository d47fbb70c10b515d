import os, sys, datetime, importlib.util
sys.path[:0] = ["/tmp/issue5/site", "/tmp/issue5/tproj"]
os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
import django; django.setup()
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
print("django", django.get_version(), "| django.tasks module:", importlib.util.find_spec("django.tasks"))
call_command("migrate", verbosity=0)
from django_tasks import task_backends, default_task_backend
from django_tasks_db.models import DBTaskResult
from django_tasks.exceptions import InvalidTaskError
from outboxapp import tasks
from outboxapp.models import Note
DBTaskResult.objects.all().delete(); Note.objects.all().delete()
print("default backend:", type(default_task_backend).__name__, "supports_defer", default_task_backend.supports_defer)
ob = task_backends["outbox"]
print("outbox backend:", type(ob).__name__, "supports_defer", ob.supports_defer, "get_result", ob.supports_get_result)
r = tasks.immediate_default.enqueue(7)
print("default-backend task ran immediately:", r.status, tasks.CALLS)
# 1. rollback removes the enqueued row (same database, same transaction)
try:
    with transaction.atomic():
        Note.objects.create(text="a")
        tasks.deliver.enqueue(1)
        raise RuntimeError("rollback")
except RuntimeError:
    pass
print("after rollback: notes", Note.objects.count(), "task rows", DBTaskResult.objects.count())
with transaction.atomic():
    n = Note.objects.create(text="b")
    tasks.deliver.enqueue(2)
    transaction.on_commit(lambda: tasks.deliver.enqueue(3))
print("after commit: task rows", DBTaskResult.objects.count(), list(DBTaskResult.objects.values_list("status", "queue_name", "backend_name")))
# 2. failing task: status FAILED, not retried
tasks.deliver.enqueue(999)
later = tasks.deliver.using(run_after=timezone.now() + datetime.timedelta(hours=1)).enqueue(4)
tasks.with_ctx.enqueue()
call_command("db_worker", "--backend", "outbox", "--queue-name", "mail", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
for row in DBTaskResult.objects.order_by("enqueued_at"):
    tr = row.task_result
    print(" ", row.args_kwargs, row.status, "attempts", tr.attempts, "run_after", row.run_after.year, (row.exception_class_path or "")[:40], "ret", row.return_value)
# 3. run_after on Immediate backend
try:
    tasks.immediate_default.using(run_after=timezone.now()).enqueue(1)
except InvalidTaskError as e:
    print("ImmediateBackend + run_after ->", type(e).__name__, e)
# 4. unknown queue
try:
    tasks.deliver.using(queue_name="other").enqueue(5)
except InvalidTaskError as e:
    print("unknown queue ->", type(e).__name__, e)
print("delivered.log:", open("/tmp/issue5/tproj/delivered.log").read().split())
