package device

import (
	"encoding/json"
	"fmt"
	"time"
)

// ReplayMismatchError reports that a push answered already_committed with
// rows that are not replay-equivalent to the frozen outbox (5.5, 9): the
// client refuses to continue rather than guess.
type ReplayMismatchError struct {
	Table, Key string
	Reason     string
}

func (e *ReplayMismatchError) Error() string {
	return fmt.Sprintf("device: already committed push differs from the local outbox at %s %q: %s", e.Table, e.Key, e.Reason)
}

// checkReplay compares committed rows with the frozen outbox: every pushed
// row must appear with the same op and a replay-equivalent payload. Extra
// committed rows (cascades) are allowed.
func (c *Client) checkReplay(outbox []outboxRow, committed []wireRow) error {
	type tk struct{ t, k string }
	byKey := make(map[tk]*wireRow, len(committed))
	for i := range committed {
		r := &committed[i]
		t, key, err := c.checkRowTarget(r)
		if err != nil {
			return err
		}
		byKey[tk{t.Name, key}] = r
	}
	for _, o := range outbox {
		r, ok := byKey[tk{o.table, o.key}]
		if !ok {
			return &ReplayMismatchError{o.table, o.key, "row missing from the committed bundle"}
		}
		if r.Op != o.op {
			return &ReplayMismatchError{o.table, o.key, fmt.Sprintf("op %s committed, %s pushed", r.Op, o.op)}
		}
		if o.op == "DELETE" {
			continue
		}
		var pushed, got any
		if err := json.Unmarshal(o.payload, &pushed); err != nil {
			return err
		}
		if err := json.Unmarshal(r.Payload, &got); err != nil {
			return err
		}
		if why := replayDiff(pushed, got); why != "" {
			return &ReplayMismatchError{o.table, o.key, why}
		}
	}
	return nil
}

// replayDiff returns "" when got is replay-equivalent to pushed: same
// members, numbers equal as doubles, strings byte-equal unless both are the
// same RFC 3339 instant, null only for null, booleans only for booleans.
func replayDiff(pushed, got any) string {
	switch p := pushed.(type) {
	case nil:
		if got != nil {
			return fmt.Sprintf("null pushed, %v committed", got)
		}
	case bool:
		if g, ok := got.(bool); !ok || g != p {
			return fmt.Sprintf("%v pushed, %v committed", p, got)
		}
	case float64:
		if g, ok := got.(float64); !ok || g != p {
			return fmt.Sprintf("%v pushed, %v committed", p, got)
		}
	case string:
		g, ok := got.(string)
		if !ok {
			return fmt.Sprintf("%q pushed, %v committed", p, got)
		}
		if g != p && !sameInstant(p, g) {
			return fmt.Sprintf("%q pushed, %q committed", p, g)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(p) {
			return "array differs"
		}
		for i := range p {
			if why := replayDiff(p[i], g[i]); why != "" {
				return fmt.Sprintf("[%d]: %s", i, why)
			}
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(p) {
			return "member set differs"
		}
		for k, pv := range p {
			gv, ok := g[k]
			if !ok {
				return fmt.Sprintf("member %s missing", k)
			}
			if why := replayDiff(pv, gv); why != "" {
				return k + ": " + why
			}
		}
	}
	return ""
}

func sameInstant(a, b string) bool {
	ta, err1 := time.Parse(time.RFC3339Nano, a)
	tb, err2 := time.Parse(time.RFC3339Nano, b)
	return err1 == nil && err2 == nil && ta.Equal(tb)
}
