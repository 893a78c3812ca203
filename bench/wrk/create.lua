-- S3: create a task.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
request = function()
  return wrk.format("POST", "/api/tasks", json, '{"title":"bench","done":false}')
end
