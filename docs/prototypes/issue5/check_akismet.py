"""akismet 25.10.1 against a fake Akismet on loopback (its base URL is a module constant)."""
import sys, threading, time, socket
sys.path.insert(0, "/tmp/issue5/site")
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs
import httpx, akismet
print("akismet", akismet.__version__ if hasattr(akismet, "__version__") else "?", "| httpx", httpx.__version__,
      "| API URL constant:", akismet._common._API_URL, "| default timeout:", akismet._common._TIMEOUT)
seen = []
class Fake(BaseHTTPRequestHandler):
    def do_POST(self):
        body = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        seen.append((self.path, {k: v[0] for k, v in body.items()}))
        text = {"/1.1/verify-key": "valid", "/1.1/submit-spam": "Thanks for making the web a better place.",
                "/1.1/submit-ham": "Thanks for making the web a better place."}.get(self.path)
        headers = {}
        if self.path == "/1.1/comment-check":
            c = body.get("comment_content", [""])[0]
            text = "true" if "viagra" in c else "false"
            if "blatant" in c: headers["X-akismet-pro-tip"] = "discard"
        if "hang" in body.get("comment_content", [""])[0]:
            time.sleep(3)
        self.send_response(200); self.send_header("Content-Type", "text/plain")
        for k, v in headers.items(): self.send_header(k, v)
        self.end_headers(); self.wfile.write(text.encode())
    def log_message(self, *a): pass
srv = ThreadingHTTPServer(("127.0.0.1", 0), Fake); port = srv.server_address[1]
threading.Thread(target=srv.serve_forever, daemon=True).start()

class ToLoopback(httpx.HTTPTransport):
    """Sends every request to the fake server, whatever host the library asked for."""
    def handle_request(self, request):
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=port)
        return super().handle_request(request)

client = akismet.SyncClient.validated_client(
    config=akismet.Config(key="k3y", url="http://127.0.0.1:8000/"),
    http_client=httpx.Client(transport=ToLoopback(), timeout=1.0))
print("verify-key seen:", seen[-1][0])
print("ham  ->", repr(client.comment_check(user_ip="203.0.113.9", comment_content="nice article", comment_type="comment")))
print("spam ->", repr(client.comment_check(user_ip="203.0.113.9", comment_content="cheap viagra")))
print("discard ->", repr(client.comment_check(user_ip="203.0.113.9", comment_content="blatant viagra")))
print("submit_spam ->", client.submit_spam(user_ip="203.0.113.9", comment_content="cheap viagra"))
print("submit_ham  ->", client.submit_ham(user_ip="203.0.113.9", comment_content="nice article"))
print("fields sent:", sorted(seen[-1][1]))
t = time.perf_counter()
try:
    client.comment_check(user_ip="203.0.113.9", comment_content="hang")
except akismet.RequestError as e:
    print(f"hung server -> {type(e).__name__}: {e} after {time.perf_counter()-t:.2f} s")
try:
    client.comment_check(user_ip="1.2.3.4", comment_content="x", unknown_field="y")
except akismet.UnknownArgumentError as e:
    print("unknown kwarg ->", type(e).__name__)
print("exceptions:", [n for n in dir(akismet) if n.endswith("Error")])
srv.shutdown()
