-- A sync from a token with nothing new since.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local path = "/api/tasks/sync?token=" .. os.getenv("BENCH_SYNC_TOKEN")
request = function()
  return wrk.format("GET", path, auth)
end
