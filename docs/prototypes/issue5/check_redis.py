"""Shared counters in Redis (db 15, keys issue5:*): Django's cache add+incr vs INCR+EXPIRE NX, across 2 processes."""
import multiprocessing as mp, time, ipaddress
import redis
URL = "redis://127.0.0.1:6379/15"
N = 500

def django_worker(_):
    import django
    from django.conf import settings
    settings.configure(CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": URL}})
    django.setup()
    from django.core.cache import cache
    for _ in range(N):
        if not cache.add("issue5:dj", 1, 60):
            cache.incr("issue5:dj")

def raw_worker(_):
    r = redis.Redis.from_url(URL)
    for _ in range(N):
        p = r.pipeline(transaction=True)
        p.incr("issue5:raw"); p.expire("issue5:raw", 60, nx=True)
        p.execute()

if __name__ == "__main__":
    r = redis.Redis.from_url(URL)
    r.delete(":1:issue5:dj", "issue5:raw", "issue5:race")
    for name, fn in (("django cache.add+incr", django_worker), ("raw INCR+EXPIRE NX (MULTI)", raw_worker)):
        t = time.perf_counter()
        with mp.get_context("spawn").Pool(2) as pool:
            pool.map(fn, range(2))
        key = ":1:issue5:dj" if fn is django_worker else "issue5:raw"
        val = r.get(key)
        print(f"{name}: 2 processes x {N} -> {int(val) if val.isdigit() else val!r} "
              f"(ttl {r.ttl(key)} s), {time.perf_counter()-t:.2f} s")
    # The gap in Django's RedisCache.incr (EXISTS then INCR): a key that expires in between is
    # re-created by INCR with no expiry at all.
    r.set("issue5:race", 1, px=1); exists = r.exists("issue5:race"); time.sleep(0.01)
    r.incr("issue5:race"); print("INCR after expiry -> value", r.get("issue5:race"), "ttl", r.ttl("issue5:race"), "(-1 = never expires); EXISTS had said", exists)
    r.delete(":1:issue5:dj", "issue5:raw", "issue5:race")
    for ip in ("2001:db8:1:2:aaaa::1", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1", "203.0.113.9"):
        a = ipaddress.ip_address(ip)
        print(ip, "->", ipaddress.ip_network(f"{a}/{64 if a.version == 6 else 32}", strict=False))
