-- The 8 GET requests every gateway wrk script sends in rotation (proxy.lua, rate.lua), all
-- allowed for the Super User token the scripts pass in `Authorization`. Loaded with `dofile`.
paths = {
  "/api/v1/orgs/o1/devices/ap-11",
  "/api/v1/orgs/o2/devices",
  "/api/v1/msp/orgs",
  "/api/v1/orgs/o1/sites/s1/insights",
  "/api/v1/orgs/o3/wlans",
  "/api/v1/msp/settings",
  "/api/v1/orgs/o2",
  "/api/v1/orgs/o1/admins",
}
