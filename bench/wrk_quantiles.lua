-- Prints wrk's latency histogram read at every 0.1 % (in microseconds), so that
-- bench/common.py can pool the percentiles of several rounds of the same server.
done = function(summary, latency, requests)
  local values = {}
  for i = 1, 1000 do
    values[i] = string.format("%d", latency:percentile(i / 10))
  end
  io.write("latency quantiles us: " .. table.concat(values, " ") .. "\n")
end
