-- wrk script: nearest-10 API searches from random points around Australian cities,
-- each with one of the five benchmark modalities (the same mix as bench/search.py).
--   wrk -t2 -c64 -d30s --latency -s bench/wrk_search.lua http://127.0.0.1:8000
local cities = {
  {-33.8688, 151.2093}, {-37.8136, 144.9631}, {-27.4698, 153.0251}, {-31.9523, 115.8613},
  {-34.9285, 138.6007}, {-28.0167, 153.4000}, {-35.2809, 149.1300}, {-32.9283, 151.7817},
}
local modalities = {"remedial-massage", "physiotherapy", "myotherapy", "osteopathy", "yoga"}
local prefix = os.getenv("REFERRAL_URL_PREFIX") or "/find-a-therapist"
-- the plugin's default search radius; RADIUS_KM=50 for a wider (costlier to count) search
local radius = os.getenv("RADIUS_KM") or "25"

math.randomseed(os.time())

request = function()
  local c = cities[math.random(#cities)]
  local lat = c[1] + (math.random() - 0.5) * 0.4
  local lon = c[2] + (math.random() - 0.5) * 0.4
  local m = modalities[math.random(#modalities)]
  local path = string.format(
    "%s/api/v1/practitioners?lat=%.5f&lon=%.5f&modality=%s&per_page=10&radius_km=%s",
    prefix, lat, lon, m, radius)
  return wrk.format("GET", path)
end
