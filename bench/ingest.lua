-- wrk script: POST a ModelLoadFailure webhook with a fresh fingerprint per request.
-- wrk -s bench/ingest.lua -H "Authorization: Bearer TOKEN" URL [-- SENDER]
-- SENDER (a small number, default 0) keeps alerts of concurrent wrk processes distinct.
local counter = 0
local sender = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end

function init(args)
  sender = tonumber(args[1] or "0") or 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local fp = string.format("%02x%02x%012x", sender, id, counter)
  local body = '{"receiver":"remediator","status":"firing","alerts":[{"status":"firing",' ..
    '"labels":{"alertname":"BenchAlert","instance":"bench:' .. sender .. '-' .. id .. '","service":"bench",' ..
    '"severity":"info","seq":"' .. counter .. '"},"annotations":{},' ..
    '"startsAt":"2026-11-29T11:27:02.749133669Z","endsAt":"0001-01-01T00:00:00Z",' ..
    '"generatorURL":"","fingerprint":"' .. fp .. '"}],"groupLabels":{},"commonLabels":{},' ..
    '"commonAnnotations":{},"externalURL":"http://bench","version":"4",' ..
    '"groupKey":"{}:{}","truncatedAlerts":0}'
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 202 then
    non_accepted = (non_accepted or 0) + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors=%d p50_us=%d p99_us=%d rps=%.1f\n",
    summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write +
      summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6)))
  io.write(string.format("STATUS_ERRORS %d\n", summary.errors.status))
end
