-- wrk's side of the cross-check (bench/wrk/run): the requests `invite-loadtest compare` sends,
-- from another load generator, the same for this service and for Together.
--
--   WRK_MODE=<mode> WRK_TOKENS=<file> WRK_THREADS=<t> wrk -t<t> -c<conns> -d<time> -s invites.lua <url>
--
-- Modes: preview (GET /invites/d<n>, n at random in 1..WRK_INVITES), big (GET /invites/pbig0001),
-- accept-distinct (POST /invites/d<n>/accept, each a user never seen before), accept-hot (POST
-- /invites/hot00001/accept, likewise), create (POST /servers/<k>/invites as the owner of server
-- k, k at random in 1..WRK_SERVERS). WRK_TOKENS: for the accepts, `invite-loadtest tokens
-- --users-from`'s file, one token a line, shared out among the threads so that no token is sent
-- twice; otherwise `tokens --owners`'s, "<k> <token>" a line (previews carry the first, as
-- Together requires a token). A thread whose tokens run out asks for /tokens-exhausted, whose
-- 404s count against the run. done() prints one JSON line: the answers per second that were
-- 2xx, beside wrk's own figures.

local mode = os.getenv("WRK_MODE") or "preview"
local file = os.getenv("WRK_TOKENS")
local invites = tonumber(os.getenv("WRK_INVITES") or "20000")
local servers = tonumber(os.getenv("WRK_SERVERS") or "1000")
local accepting = mode == "accept-distinct" or mode == "accept-hot"

-- The number of wrk's threads (its -t), to share the users out among them.
local thread_count = tonumber(os.getenv("WRK_THREADS") or "1")
local started = 0
function setup(thread)
  thread:set("index", started)
  started = started + 1
end

local tokens, next_token, first
function init(args)
  tokens, next_token = {}, 1
  local line_number = 0
  for line in io.lines(file) do
    if accepting then
      -- Thread i of t takes lines i, i + t, i + 2t...: disjoint shares of the users.
      if line_number % thread_count == index then tokens[#tokens + 1] = line end
    else
      local k, token = line:match("^(%d+) (%S+)$")
      tokens[tonumber(k)] = token
    end
    line_number = line_number + 1
  end
  first = tokens[1]
  math.randomseed(os.time() + index * 104729)
end

local function bearer(token)
  return { ["Authorization"] = "Bearer " .. token }
end

function request()
  if mode == "preview" then
    return wrk.format("GET", string.format("/invites/d%07d", math.random(invites)), bearer(first))
  elseif mode == "big" then
    return wrk.format("GET", "/invites/pbig0001", bearer(first))
  elseif mode == "create" then
    local k = math.random(servers)
    local headers = bearer(tokens[k])
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", string.format("/servers/5e000000-0000-4000-8000-%012d/invites", k),
      headers, '{"max_uses":10}')
  end
  local token = tokens[next_token]
  next_token = next_token + 1
  if token == nil then
    return wrk.format("GET", "/tokens-exhausted")
  end
  local code = mode == "accept-hot" and "hot00001" or string.format("d%07d", math.random(invites))
  return wrk.format("POST", "/invites/" .. code .. "/accept", bearer(token))
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  local failed = errors.status + errors.connect + errors.read + errors.write + errors.timeout
  io.write(string.format(
    '{"mode":"%s","requests":%d,"seconds":%.3f,"non_2xx":%d,"socket_errors":%d,' ..
    '"ok_per_second":%.1f,"p50_ms":%.2f,"p99_ms":%.2f}\n',
    mode, summary.requests, seconds, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    (summary.requests - failed) / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
