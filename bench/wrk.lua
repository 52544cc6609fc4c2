-- One wrk script for every scenario. The driver writes a config file (BENCH_WRK_CONFIG), one
-- "key<TAB>value" per line:
--   mode    get | create | approve
--   token   a bearer token (repeatable; requests rotate through them; none = anonymous)
--   item    a path (get) or a registration id (approve); requests rotate through them
--   nonce   makes create's endpoint URLs unique per run
-- At the end it prints one line "BENCHJSON {...}" with counts, statuses and latency percentiles (µs).

local mode, nonce = "get", "x"
tokens, items = {}, {}
statuses = {}
counter = 0

for line in io.lines(os.getenv("BENCH_WRK_CONFIG")) do
  local key, value = line:match("^(%w+)\t(.*)$")
  if key == "mode" then mode = value
  elseif key == "nonce" then nonce = value
  elseif key == "token" then tokens[#tokens + 1] = value
  elseif key == "item" then items[#items + 1] = value
  end
end

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  threads[#threads + 1] = thread
end

local decision = '{"status":"Approved","reason":"approved by the benchmark"}'
local create_body = '{"endpoint_url":"https://bench-w-create-%s-%d-%d.example.net/mcp",' ..
  '"endpoint_name":"Bench Created Server %d","description":"Registered by the benchmark load generator.",' ..
  '"owner_contact":"bench@example.com","available_tools":[{"name":"search_issues","description":"Search issues"},' ..
  '{"name":"get_issue","version":"1.0"}]}'

function request()
  counter = counter + 1
  local headers = {}
  if #tokens > 0 then
    headers["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1]
  end
  if mode == "create" then
    headers["Content-Type"] = "application/json"
    local body = string.format(create_body, nonce, thread_index or 0, counter, counter)
    return wrk.format("POST", "/api/registrations", headers, body)
  end
  local item = items[((counter - 1) % #items) + 1]
  if mode == "approve" then
    headers["Content-Type"] = "application/json"
    return wrk.format("PATCH", "/api/registrations/" .. item .. "/status", headers, decision)
  end
  return wrk.format("GET", item, headers)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for key, value in pairs(counts) do
      merged[key] = (merged[key] or 0) + value
    end
  end
  local parts = {}
  for key, value in pairs(merged) do
    parts[#parts + 1] = string.format('"%s":%d', key, value)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"non_2xx_3xx":%d,"statuses":{%s},' ..
    '"latency_us":{"min":%d,"max":%d,"mean":%.1f,"p50":%d,"p95":%d,"p99":%d}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status,
    table.concat(parts, ","), latency.min, latency.max, latency.mean,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
