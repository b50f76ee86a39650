-- Verifik's answers, at the edge. Runs just after jwt_authn.
--
-- Requests: refuses calls whose bearer JWT jwt_authn did not verify (it runs
-- with allow_missing_or_failed and leaves the verified payload, or the
-- failure, in its dynamic metadata). No token: 401 "Authentication
-- required" / UNAUTHORIZED; an expired token: 403 token_expired / FORBIDDEN;
-- any other bad token (signature, key, issuer, audience, format): 401
-- invalid_token. gRPC callers get the matching status (UNAUTHENTICATED, or
-- PERMISSION_DENIED when expired) and reason trailer, as the gateway answers
-- when called directly.
--
-- Responses: gives transcoded (REST) errors Verifik's JSON error shape:
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

-- (HTTP status, gRPC status, reason, message) of a refused token.
local function refusal(has_token, failure)
  if not has_token then
    return 401, 16, "missing_token", "Authentication required"
  end
  local text = (failure and failure["message"]) or "the token was not verified"
  if text == "Jwt is expired" then
    return 403, 7, "token_expired", "the token has expired"
  end
  return 401, 16, "invalid_token", "the token was refused: " .. text
end

local function refuse_unverified(request_handle, headers, grpc)
  local jwt = request_handle:streamInfo():dynamicMetadata():get("envoy.filters.http.jwt_authn")
  if jwt ~= nil and jwt["jwt_payload"] ~= nil then
    return
  end
  local has_token = (headers:get("authorization") or "") ~= ""
  local http, status, reason, message = refusal(has_token, jwt and jwt["jwt_failure"])
  if grpc then
    -- Envoy makes grpc-message from this local reply's body.
    request_handle:respond({[":status"] = "200", ["content-type"] = "application/grpc",
                            ["grpc-status"] = tostring(status), ["facesearch-error"] = reason}, message)
    return
  end
  request_handle:respond({[":status"] = tostring(http), ["content-type"] = "application/json",
                          ["www-authenticate"] = 'Bearer error="invalid_token"'},
                         '{"error":' .. json_string(reason) .. ',"message":' .. json_string(message)
                         .. ',"code":' .. json_string(REST_CODES[status]) .. '}')
end

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local grpc = (headers:get("content-type") or ""):find("^application/grpc") ~= nil
  request_handle:streamInfo():dynamicMetadata():set("facesearch", "grpc", grpc)
  refuse_unverified(request_handle, headers, grpc)
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
