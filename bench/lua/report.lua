-- The report every benchmark wrk run ends with (bench/_servers.py reads it): one line
--   BENCH_JSON {"requests": ..., "p50_us": ..., "statuses": {"200": ...}, ...}
-- Statuses are there only when a script counts them in a global table `statuses` (see
-- statuses.lua); a plain GET run leaves wrk's fast path alone (no response() callback) and
-- reports wrk's own count of statuses >= 400 in "status_errors".
--
-- A script put before this one may define bench_setup(thread, n) to hand each wrk thread
-- values (thread:set) before its init() runs.

local bench_threads = {}

function setup(thread)
  table.insert(bench_threads, thread)
  if bench_setup then
    bench_setup(thread, #bench_threads)
  end
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(bench_threads) do
    local counts = thread:get("statuses")
    if type(counts) == "table" then
      for status, n in pairs(counts) do
        local key = tostring(status)
        total[key] = (total[key] or 0) + n
      end
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    parts[#parts + 1] = string.format('"%s": %d', status, n)
  end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, '
      .. '"p90_us": %d, "p99_us": %d, "max_us": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "status_errors": %d, '
      .. '"statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout, summary.errors.status,
    table.concat(parts, ", ")
  ))
end
