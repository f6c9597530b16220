-- Distributed rate limiting: each replica publishes, per tenant, how many
-- requests it saw recently; replicas split a tenant's rate by demand.
-- Unlogged: the data is seconds old and worthless after a crash.
CREATE UNLOGGED TABLE syncplane.rate_demand (
    tenant_id  bigint NOT NULL,
    replica_id text NOT NULL,
    demand     double precision NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, replica_id)
);

-- Usage per tenant per hour. Replicas add their own deltas (counters) or
-- raise maxima (gauges); samplers set the sampled columns.
CREATE TABLE syncplane.usage_hourly (
    tenant_id        bigint NOT NULL,
    hour             timestamptz NOT NULL CHECK (date_trunc('hour', hour) = hour),
    requests         bigint NOT NULL DEFAULT 0,
    bundles_pushed   bigint NOT NULL DEFAULT 0,
    rows_pushed      bigint NOT NULL DEFAULT 0,
    rows_pulled      bigint NOT NULL DEFAULT 0,
    rows_snapshotted bigint NOT NULL DEFAULT 0,
    bytes_in         bigint NOT NULL DEFAULT 0,
    bytes_out        bigint NOT NULL DEFAULT 0,
    active_devices   bigint NOT NULL DEFAULT 0,
    peak_watchers    bigint NOT NULL DEFAULT 0,
    storage_bytes    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, hour)
);
CREATE INDEX usage_hourly_hour_idx ON syncplane.usage_hourly (hour);

CREATE TABLE syncplane.usage_requests (
    tenant_id bigint NOT NULL,
    hour      timestamptz NOT NULL,
    endpoint  text NOT NULL,
    requests  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, hour, endpoint)
);
