-- S1 and S4: read one random seeded task.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
math.randomseed(42)
request = function()
  return wrk.format("GET", "/api/tasks/" .. math.random(lo, hi), auth)
end
