-- A batch of 100 creates, each command with a uuid of its own.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local nonce = os.getenv("BENCH_NONCE")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end
local sent = 0
request = function()
  sent = sent + 1
  local commands = {}
  for n = 1, 100 do
    commands[n] = string.format(
      '{"type":"create","uuid":"%s-%d-%d-%d","args":{"title":"bench","done":false}}',
      nonce, thread_id, sent, n)
  end
  local body = '{"commands":[' .. table.concat(commands, ",") .. ']}'
  return wrk.format("POST", "/api/tasks/batch", json, body)
end
