-- Gives transcoded (REST) error answers Verifik's JSON error shape:
--   {"error": <reason>, "message": <text>, "code": <gRPC status name>}
-- The gateway sends the reason in the `facesearch-error` trailer and the text
-- in grpc-message; a trailers-only gRPC error reaches us as response headers.
-- Plain gRPC callers are left alone: they read the status themselves.

local CODES = {
  [1] = "CANCELLED", [2] = "UNKNOWN", [3] = "INVALID_ARGUMENT",
  [4] = "DEADLINE_EXCEEDED", [5] = "NOT_FOUND", [6] = "ALREADY_EXISTS",
  [7] = "PERMISSION_DENIED", [8] = "RESOURCE_EXHAUSTED", [9] = "FAILED_PRECONDITION",
  [10] = "ABORTED", [11] = "OUT_OF_RANGE", [12] = "UNIMPLEMENTED",
  [13] = "INTERNAL", [14] = "UNAVAILABLE", [15] = "DATA_LOSS", [16] = "UNAUTHENTICATED",
}
-- REST bodies name these two as Verifik does (HTTP 403 and 401).
local REST_CODES = { [7] = "FORBIDDEN", [16] = "UNAUTHORIZED" }

-- grpc-message is percent-encoded (gRPC spec); JSON needs its own escaping.
local function unpercent(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function json_string(s)
  s = s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. s .. '"'
end

function envoy_on_request(request_handle)
  local ct = request_handle:headers():get("content-type") or ""
  request_handle:streamInfo():dynamicMetadata():set("facesearch", "grpc", ct:find("^application/grpc") ~= nil)
end

function envoy_on_response(response_handle)
  local meta = response_handle:streamInfo():dynamicMetadata():get("facesearch")
  if meta == nil or meta["grpc"] then
    return
  end
  local headers = response_handle:headers()
  local status = tonumber(headers:get("grpc-status") or "")
  if status == nil or status == 0 then
    return
  end
  local message = unpercent(headers:get("grpc-message") or "")
  local reason = headers:get("facesearch-error") or string.lower(CODES[status] or "unknown")
  local body = '{"error":' .. json_string(reason) .. ',"message":' .. json_string(message)
      .. ',"code":' .. json_string(REST_CODES[status] or CODES[status] or "UNKNOWN") .. '}'
  for _, name in ipairs({"grpc-status", "grpc-message", "grpc-status-details-bin", "facesearch-error"}) do
    headers:remove(name)
  end
  headers:replace("content-type", "application/json")
  response_handle:body(true):setBytes(body)
end
