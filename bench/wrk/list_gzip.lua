-- D2: S2's page (the fifth, 20 tasks), asked for gzip-compressed.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local headers = { ["Authorization"] = auth["Authorization"], ["Accept-Encoding"] = "gzip" }
request = function()
  return wrk.format("GET", "/api/tasks?page=5&page_size=20", headers)
end
