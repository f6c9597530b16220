DROP TABLE IF EXISTS syncplane.usage_requests, syncplane.usage_hourly, syncplane.rate_demand;
