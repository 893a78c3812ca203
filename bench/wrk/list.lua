-- S2: the fifth page of the list.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
request = function()
  return wrk.format("GET", "/api/tasks?page=5&page_size=20", auth)
end
