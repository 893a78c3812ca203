-- S5: 80% reads, 15% updates, 5% creates.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
math.randomseed(7)
request = function()
  local r = math.random(100)
  local id = math.random(lo, hi)
  if r <= 80 then
    return wrk.format("GET", "/api/tasks/" .. id, auth)
  elseif r <= 95 then
    return wrk.format("PATCH", "/api/tasks/" .. id, json, '{"done":true}')
  else
    return wrk.format("POST", "/api/tasks", json, '{"title":"mix","done":false}')
  end
end
