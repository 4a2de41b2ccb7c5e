-- wrk script: POST /search with queries taken in turn from bench/results/.queries.txt (one per line).
local queries = {}
for line in io.lines("bench/results/.queries.txt") do
  queries[#queries + 1] = line
end
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local q = queries[(counter % #queries) + 1]:gsub('\\', '\\\\'):gsub('"', '\\"')
  return wrk.format(nil, "/search", nil, '{"query": "' .. q .. '", "k": 10}')
end
