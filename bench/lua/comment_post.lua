-- One new, unique guest comment per request (name, email, text and submission key all carry
-- run + wrk thread + counter), so neither the duplicate check nor the double-submit check
-- fires. The form and CSRF tokens come from /comments/session/ as the page's script gets
-- them; the caller passes them URL-encoded in the environment:
--   BENCH_RUN          a random marker for this run
--   BENCH_THREAD       the comment thread's id
--   BENCH_FORM_TOKEN   form_token            BENCH_CSRF         csrf_token
--   BENCH_CSRF_COOKIE  the csrftoken cookie  BENCH_POST_PATH    default /comments/post/
-- Put statuses.lua and report.lua after this file.

local counter = 0
local marker = "run"
local static_fields

function bench_setup(thread, n)
  thread:set("bench_thread_number", n)
end

function init(args)
  marker = (os.getenv("BENCH_RUN") or "run") .. "t" .. tostring(bench_thread_number or 0)
  static_fields = table.concat({
    "csrfmiddlewaretoken=" .. (os.getenv("BENCH_CSRF") or ""),
    "thread=" .. (os.getenv("BENCH_THREAD") or ""),
    "comment_parent=",
    "url=",
    "website2=",
    "form_token=" .. (os.getenv("BENCH_FORM_TOKEN") or ""),
  }, "&")
end

local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Cookie"] = "csrftoken=" .. (os.getenv("BENCH_CSRF_COOKIE") or ""),
  ["User-Agent"] = "Mozilla/5.0 (wrk comment benchmark)",
}
local path = os.getenv("BENCH_POST_PATH") or "/comments/post/"

function request()
  counter = counter + 1
  local id = marker .. "n" .. counter
  local body = table.concat({
    static_fields,
    "author=Reader+" .. id,
    "email=reader." .. id .. "%40example.org",
    "submission_key=" .. id,
    "comment=Greetings+from+reader+" .. id .. "+to+the+conference.+We+read+the+report+"
      .. "with+interest+and+send+our+solidarity%3B+more+news+from+our+town+soon.",
  }, "&")
  return wrk.format("POST", path, headers, body)
end
