-- Refuses calls whose bearer JWT jwt_authn did not verify, with Verifik's
-- answers: no token 401 "Authentication required" / UNAUTHORIZED; an expired
-- token 403 token_expired / FORBIDDEN; any other bad token (signature, key,
-- issuer, audience, format) 401 invalid_token. gRPC callers get the matching
-- status (UNAUTHENTICATED, or PERMISSION_DENIED when expired) and reason
-- trailer, as the gateway answers when called directly.
--
-- jwt_authn runs just before with allow_missing_or_failed: it puts the
-- verified payload, or the failure, in its dynamic metadata.

local function json_string(s)
  s = s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. s .. '"'
end

-- (HTTP status, gRPC status, REST code, reason, message)
local function refusal(has_token, failure)
  if not has_token then
    return 401, 16, "UNAUTHORIZED", "missing_token", "Authentication required"
  end
  local text = (failure and failure["message"]) or "the token was not verified"
  if text == "Jwt is expired" then
    return 403, 7, "FORBIDDEN", "token_expired", "the token has expired"
  end
  return 401, 16, "UNAUTHORIZED", "invalid_token", "the token was refused: " .. text
end

function envoy_on_request(request_handle)
  local jwt = request_handle:streamInfo():dynamicMetadata():get("envoy.filters.http.jwt_authn")
  if jwt ~= nil and jwt["jwt_payload"] ~= nil then
    return
  end
  local headers = request_handle:headers()
  local has_token = (headers:get("authorization") or "") ~= ""
  local http, grpc, code, reason, message = refusal(has_token, jwt and jwt["jwt_failure"])
  local content_type = headers:get("content-type") or ""
  if content_type:find("^application/grpc") then
    request_handle:respond({[":status"] = "200", ["content-type"] = "application/grpc",
                            ["grpc-status"] = tostring(grpc), ["grpc-message"] = message,
                            ["facesearch-error"] = reason}, "")
    return
  end
  request_handle:respond({[":status"] = tostring(http), ["content-type"] = "application/json",
                          ["www-authenticate"] = 'Bearer error="invalid_token"'},
                         '{"error":' .. json_string(reason) .. ',"message":' .. json_string(message)
                         .. ',"code":' .. json_string(code) .. '}')
end
