from django_tasks import task, TaskContext
CALLS = []
@task(backend="outbox", queue_name="mail")
def deliver(outbox_id: int) -> str:
    import pathlib
    p = pathlib.Path("/tmp/issue5/tproj/delivered.log")
    with p.open("a") as fh:
        fh.write(f"{outbox_id}\n")
    if outbox_id == 999:
        raise ConnectionRefusedError("smtp down")
    return "ok"
@task()
def immediate_default(x: int) -> int:
    CALLS.append(x)
    return x
@task(takes_context=True, backend="outbox", queue_name="mail")
def with_ctx(context: TaskContext) -> int:
    return context.attempt
@task(backend="outbox", queue_name="mail")
def slow(n: int) -> int:
    import time; time.sleep(30); return n
@task(backend="outbox", queue_name="mail")
def send_one(i: int) -> None:
    from django.core.mail import EmailMultiAlternatives
    m = EmailMultiAlternatives(f"Comment {i}", "text", "noreply@blog.test", ["mod@blog.test"])
    m.attach_alternative("<p>html</p>", "text/html")
    m.send()
