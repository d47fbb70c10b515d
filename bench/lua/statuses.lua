-- Count every response's status, per wrk thread; report.lua adds them up at the end.
-- (A response() callback makes wrk hand each response to Lua: use it where statuses matter,
-- as for comment posts, not for the fastest GET rows.)

statuses = {}

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
