-- Shared by the scenarios: the bearer token and the range of seeded ids come
-- from the environment that bench/load.py sets.
local token = os.getenv("BENCH_TOKEN")
lo = tonumber(os.getenv("BENCH_LO"))
hi = tonumber(os.getenv("BENCH_HI"))
auth = { ["Authorization"] = "Bearer " .. token }
json = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
