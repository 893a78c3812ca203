-- D1 (diagnostic, not in the default run): S5's change alone, a PATCH of a random
-- seeded task without If-Match.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
math.randomseed(11)
request = function()
  return wrk.format("PATCH", "/api/tasks/" .. math.random(lo, hi), json, '{"done":true}')
end
