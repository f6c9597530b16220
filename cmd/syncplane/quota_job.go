package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/server"
)

// quotaJob reports syncplane_quota_utilization_ratio (per tenant and quota,
// on /tenant-metrics) for the tenants with recent traffic.
//
// Measuring use runs aggregate queries over each tenant schema, so one
// replica at a time does it: each run takes a transaction-scoped advisory
// lock and the others skip. Only that replica's /tenant-metrics carries the
// series; which replica it is may change from one minute to the next, and a
// former leader keeps its last values until the collector's window drops
// them. Alert on the freshest view across replicas, e.g.
//
//	max by (tenant, quota) (syncplane_quota_utilization_ratio) >= 0.8
type quotaJob struct {
	store   *tenant.Store
	metrics *server.TenantCollector
	jobs    *server.SyncMetrics // runs as syncplane_job_*{job_name="quota_utilization"}; may be nil
	log     *slog.Logger
	now     func() time.Time
	// max bounds the tenants measured per run (the busiest first), in line
	// with the collector's own bound.
	max int
}

// quotaJobLock is held by the replica measuring utilization, for one run.
const quotaJobLock = `SELECT pg_try_advisory_xact_lock(hashtextextended('syncplane.quota_utilization', 0))`

// quotaJobTenants are the active tenants with traffic since $1, busiest
// first (the hour index bounds the scan to two hours of usage rows).
const quotaJobTenants = `SELECT u.tenant_id
	FROM syncplane.usage_hourly u JOIN syncplane.tenants t ON t.id = u.tenant_id
	WHERE u.hour >= $1 AND t.state = 'active'
		AND (u.requests > 0 OR u.bundles_pushed > 0 OR u.peak_watchers > 0)
	GROUP BY u.tenant_id
	ORDER BY sum(u.requests) DESC, u.tenant_id
	LIMIT $2`

// quotaJobName is the job_name label of the job's runs.
const quotaJobName = "quota_utilization"

func newQuotaJob(store *tenant.Store, metrics *server.TenantCollector, jobs *server.SyncMetrics, log *slog.Logger) *quotaJob {
	return &quotaJob{store: store, metrics: metrics, jobs: jobs, log: log, now: time.Now, max: tenantMetricsMax}
}

// run measures every interval until ctx ends; a run may take at most nine
// tenths of an interval.
func (j *quotaJob) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, every*9/10)
		start := time.Now()
		ran, _, err := j.once(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		// Only the replica that ran (or failed) records a run: alerts take
		// the freshest success across replicas.
		if ran || err != nil {
			j.jobs.ObserveJob(quotaJobName, time.Since(start), err)
		}
		if err != nil {
			j.log.Warn("quota utilization run failed", "err", err)
		}
	}
}

// once measures the tenants with traffic in this or the previous hour and
// reports their utilization, unless another replica holds the lock
// (ran=false). A tenant that cannot be measured is logged and skipped.
func (j *quotaJob) once(ctx context.Context) (ran bool, reported int, err error) {
	since := j.now().UTC().Truncate(time.Hour).Add(-time.Hour)
	err = pgx.BeginFunc(ctx, j.store.DB(), func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, quotaJobLock).Scan(&ran); err != nil || !ran {
			return err
		}
		rows, err := tx.Query(ctx, quotaJobTenants, since, j.max)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		plans := j.store.Plans()
		for _, id := range ids {
			n, err := j.report(ctx, id, plans)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				j.log.Warn("measure quota utilization", "tenant_id", id, "err", err)
				continue
			}
			reported += n
		}
		return nil
	})
	if err != nil {
		return false, reported, fmt.Errorf("quota utilization: %w", err)
	}
	return ran, reported, nil
}

// report measures one tenant and sets its series; it returns how many.
func (j *quotaJob) report(ctx context.Context, id int64, plans tenant.Plans) (int, error) {
	t, err := j.store.TenantByID(ctx, id)
	if errors.Is(err, tenant.ErrNotFound) {
		return 0, nil // deleted since
	}
	if err != nil {
		return 0, err
	}
	q, err := j.store.Quota(ctx, t, plans)
	if err != nil {
		return 0, err
	}
	if len(tenant.Utilization(tenant.Use{}, q.Limits)) == 0 {
		return 0, nil // nothing measured is limited: skip the costly part
	}
	use, err := j.store.CurrentUse(ctx, t)
	if err != nil {
		return 0, err
	}
	util := tenant.Utilization(use, q.Limits)
	for name, ratio := range util {
		j.metrics.SetQuotaUtilization(string(t.Slug), name, ratio)
	}
	return len(util), nil
}
