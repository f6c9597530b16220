package tenant

import (
	"context"
	"fmt"
	"time"
)

// DemandTotals is the recent aggregate request demand of one tenant.
type DemandTotals struct {
	// Demand is the summed demand of every replica that reported recently.
	Demand float64
	// Replicas is how many replicas reported demand for the tenant.
	Replicas int
}

// ExchangeDemand publishes this replica's recent per-tenant demand
// (requests per second it was asked to serve) and returns every tenant's
// totals over the replicas that reported within fresh. One round trip.
func (s *Store) ExchangeDemand(ctx context.Context, replica string, demand map[int64]float64, fresh time.Duration) (map[int64]DemandTotals, error) {
	ids := make([]int64, 0, len(demand))
	vals := make([]float64, 0, len(demand))
	for id, d := range demand {
		ids = append(ids, id)
		vals = append(vals, d)
	}
	rows, err := s.db.Query(ctx, `WITH up AS (
			INSERT INTO syncplane.rate_demand (tenant_id, replica_id, demand, updated_at)
			SELECT u.id, $1, u.d, now() FROM unnest($2::bigint[], $3::float8[]) AS u(id, d)
			ON CONFLICT (tenant_id, replica_id) DO UPDATE SET demand = EXCLUDED.demand, updated_at = EXCLUDED.updated_at
			RETURNING tenant_id, demand)
		SELECT tenant_id, sum(demand), count(*) FROM (
			SELECT tenant_id, demand FROM up
			UNION ALL
			SELECT tenant_id, demand FROM syncplane.rate_demand
			WHERE tenant_id = ANY($2) AND replica_id <> $1 AND updated_at > now() - $4::interval AND demand > 0
		) d GROUP BY tenant_id`, replica, ids, vals, fresh.String())
	if err != nil {
		return nil, fmt.Errorf("exchange rate demand: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]DemandTotals, len(ids))
	for rows.Next() {
		var id int64
		var t DemandTotals
		if err := rows.Scan(&id, &t.Demand, &t.Replicas); err != nil {
			return nil, fmt.Errorf("exchange rate demand: %w", err)
		}
		out[id] = t
	}
	return out, rows.Err()
}

// PruneDemand forgets demand reports older than age.
func (s *Store) PruneDemand(ctx context.Context, age time.Duration) error {
	_, err := s.db.Exec(ctx, `DELETE FROM syncplane.rate_demand WHERE updated_at < now() - $1::interval`, age.String())
	return err
}
