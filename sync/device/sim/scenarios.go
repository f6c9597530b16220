package sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/syncplane/syncplane/sync/device"
)

// Scenarios returns the suite in run order.
func Scenarios() []Scenario {
	return []Scenario{
		{"fresh-install", freshInstall},
		{"daily-use", dailyUse},
		{"multi-device-same-and-different-rows", multiDevice},
		{"offline-then-reconnect", offlineReconnect},
		{"conflict-outcomes", conflictOutcomes},
		{"device-replacement", deviceReplacement},
		{"app-reinstall", appReinstall},
		{"user-switch", userSwitch},
		{"fk-parent-child", fkParentChild},
		{"column-types", columnTypes},
		{"watch-wakeup", watchWakeup},
		{"large-push", largePush},
		{"history-pruned", historyPruned},
		{"server-originated-writes", serverWrites},
	}
}

func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

const ts = "2026-03-24T18:02:00.123456789Z"

func (t *T) insertUser(d *device.Client, id, name string) {
	t.Exec(d, `INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)`, id, name, ts)
}

func (t *T) insertNote(d *device.Client, id, user, title string) {
	t.Exec(d, `INSERT INTO notes (id, user_id, title, updated_at) VALUES (?, ?, ?, ?)`, id, user, title, ts)
}

func (t *T) attach(d *device.Client) { t.Must(d.Attach(t.ctx)) }
func (t *T) sync(ds ...*device.Client) {
	for _, d := range ds {
		t.Must(d.Sync(t.ctx))
	}
}

func (t *T) count(d *device.Client, q string, args ...any) int {
	var n int
	t.Must(d.DB().QueryRowContext(t.ctx, q, args...).Scan(&n))
	return n
}

func freshInstall(t *T) {
	u := t.User("u")
	a := t.Device(u)
	uid := newUUID()
	t.insertUser(a, uid, "first user")
	for i := 0; i < 10; i++ {
		t.insertNote(a, newUUID(), uid, fmt.Sprintf("note %d", i))
	}
	t.attach(a) // initialize_local: seed push
	if st, _ := a.State(t.ctx); st.Checkpoint != 1 || st.Dirty+st.Outbox != 0 {
		t.Fatalf("after the seed push: %+v", st)
	}
	b := t.Device(u)
	t.attach(b) // remote_authoritative: snapshot
	t.Converged(u, a, b)
}

func dailyUse(t *T) {
	u := t.User("u")
	a, b := t.Device(u), t.Device(u)
	t.attach(a)
	t.attach(b)
	var ids []string
	for round := 0; round < 10; round++ {
		for _, d := range []*device.Client{a, b} {
			for i := 0; i < 5; i++ {
				id := newUUID()
				ids = append(ids, id)
				t.insertUser(d, id, fmt.Sprintf("r%d", round))
			}
			if len(ids) > 8 {
				t.Exec(d, `UPDATE users SET email = ? WHERE id = ?`, fmt.Sprintf("r%d@example.com", round), ids[mrand.IntN(len(ids)-5)])
			}
			t.sync(d)
		}
		// Some rows get deleted on the device that has them.
		if round%3 == 2 {
			t.sync(a)
			t.Exec(a, `DELETE FROM users WHERE id = ?`, ids[mrand.IntN(len(ids))])
			t.sync(a)
		}
		t.sync(a, b)
	}
	t.Converged(u, a, b)
}

func multiDevice(t *T) {
	u := t.User("u")
	devs := []*device.Client{t.Device(u), t.Device(u), t.Device(u)}
	shared := newUUID()
	t.insertUser(devs[0], shared, "shared")
	for _, d := range devs {
		t.attach(d)
	}
	t.sync(devs...)
	for i, d := range devs {
		t.Exec(d, `UPDATE users SET name = ? WHERE id = ?`, fmt.Sprintf("edited by %d", i), shared)
		t.insertUser(d, newUUID(), fmt.Sprintf("own row of %d", i))
	}
	t.sync(devs...) // the 2nd and 3rd conflict on the shared row (server wins)
	t.sync(devs...)
	t.Converged(u, devs...)
	var name string
	t.Must(devs[0].DB().QueryRowContext(t.ctx, `SELECT name FROM users WHERE id = ?`, shared).Scan(&name))
	if name != "edited by 0" {
		t.Fatalf("shared row is %q; the first push should win with AcceptServer", name)
	}
}

func offlineReconnect(t *T) {
	u := t.User("u")
	a, b := t.Device(u), t.Device(u)
	t.attach(a)
	t.attach(b)
	var ids []string
	for i := 0; i < 20; i++ {
		id := newUUID()
		ids = append(ids, id)
		t.insertUser(a, id, "base")
	}
	t.sync(a, b)
	// b is offline: 20 edits, inserts and deletes, coalesced locally.
	for i := 0; i < 10; i++ {
		t.Exec(b, `UPDATE users SET name = name || '+b' WHERE id = ?`, ids[i])
		t.insertUser(b, newUUID(), "offline insert")
	}
	t.Exec(b, `DELETE FROM users WHERE id = ?`, ids[19])
	// a keeps working on other rows.
	for i := 10; i < 18; i++ {
		t.Exec(a, `UPDATE users SET name = name || '+a' WHERE id = ?`, ids[i])
		t.sync(a)
	}
	n, _ := b.PendingChanges(t.ctx)
	t.Logf("b reconnects with %d pending changes", n)
	t.sync(b, a)
	t.Converged(u, a, b)
}

func conflictOutcomes(t *T) {
	type outcome struct {
		name     string
		resolver device.Resolver
		want     string
	}
	merge := device.Merge(func(local, server device.Row) device.Row {
		m := device.Row{}
		for k, v := range server {
			m[k] = v
		}
		m["name"] = fmt.Sprint(server["name"], "+", local["name"])
		return m
	})
	for _, o := range []outcome{
		{"accept-server", device.AcceptServer, "A"},
		{"keep-local", device.KeepLocal, "B"},
		{"merged", merge, "A+B"},
	} {
		u := t.User(o.name)
		a := t.Device(u)
		b := t.Device(u, func(c *device.Config) { c.Resolver = o.resolver })
		id := newUUID()
		t.insertUser(a, id, "v1")
		t.attach(a)
		t.attach(b)
		t.Exec(a, `UPDATE users SET name = 'A' WHERE id = ?`, id)
		t.Exec(b, `UPDATE users SET name = 'B' WHERE id = ?`, id)
		t.sync(a, b, a)
		t.Converged(u, a, b)
		var name string
		t.Must(a.DB().QueryRowContext(t.ctx, `SELECT name FROM users WHERE id = ?`, id).Scan(&name))
		if name != o.want {
			t.Fatalf("%s: row is %q, want %q", o.name, name, o.want)
		}
		t.Logf("%s: %s", o.name, name)
	}
	// Delete vs update, and insert of a key that already exists.
	u := t.User("delete-vs-update")
	a := t.Device(u)
	b := t.Device(u, func(c *device.Config) { c.Resolver = device.KeepLocal })
	id := newUUID()
	t.insertUser(a, id, "v1")
	t.attach(a)
	t.attach(b)
	t.Exec(a, `DELETE FROM users WHERE id = ?`, id)
	t.Exec(b, `UPDATE users SET name = 'revived' WHERE id = ?`, id)
	t.Exec(a, `INSERT INTO tags (name, color) VALUES ('dup', 'from a')`)
	t.Exec(b, `INSERT INTO tags (name, color) VALUES ('dup', 'from b')`)
	t.sync(a, b, a)
	t.Converged(u, a, b)
	if t.count(a, `SELECT COUNT(*) FROM users WHERE name = 'revived'`) != 1 || t.count(a, `SELECT COUNT(*) FROM tags WHERE color = 'from b'`) != 1 {
		t.Fatalf("keep-local did not win the delete/update and insert/insert conflicts")
	}

	// Update vs delete (the server row changed under a local delete) and
	// delete vs delete, each with both basic resolvers.
	for _, r := range []struct {
		name     string
		resolver device.Resolver
		keep     int // rows left of the update-vs-delete key
	}{{"server", device.AcceptServer, 1}, {"local", device.KeepLocal, 0}} {
		u := t.User("delete-" + r.name)
		a := t.Device(u)
		var seen []device.Conflict
		b := t.Device(u, func(c *device.Config) {
			c.Resolver = func(ctx context.Context, cf device.Conflict) (device.Resolution, error) {
				seen = append(seen, cf)
				return r.resolver(ctx, cf)
			}
		})
		upd, del := newUUID(), newUUID()
		t.insertUser(a, upd, "v1")
		t.insertUser(a, del, "v1")
		t.attach(a)
		t.attach(b)
		t.Exec(a, `UPDATE users SET name = 'updated' WHERE id = ?`, upd)
		t.Exec(a, `DELETE FROM users WHERE id = ?`, del)
		t.Exec(b, `DELETE FROM users WHERE id IN (?, ?)`, upd, del)
		t.sync(a, b, a)
		t.Converged(u, a, b)
		if n := t.count(a, `SELECT COUNT(*) FROM users WHERE id = ?`, upd); n != r.keep {
			t.Fatalf("update-vs-delete with %s: %d rows left, want %d", r.name, n, r.keep)
		}
		if len(seen) != 2 || !seen[1].ServerRowDeleted && !seen[0].ServerRowDeleted {
			t.Fatalf("%s: conflicts seen %+v", r.name, seen)
		}
		t.Logf("update-vs-delete and delete-vs-delete, %s wins: %d conflicts", r.name, len(seen))
	}
}

func deviceReplacement(t *T) {
	u := t.User("u")
	old := t.Device(u)
	t.attach(old)
	uid := newUUID()
	t.insertUser(old, uid, "from the old phone")
	t.sync(old)
	phone := t.Device(u)
	t.attach(phone)
	t.Converged(u, old, phone)
	// The old device comes back and continues its own sequence.
	t.insertNote(old, newUUID(), uid, "old phone again")
	t.sync(old, phone)
	t.Converged(u, old, phone)
}

func appReinstall(t *T) {
	u := t.User("u")
	a := t.Device(u)
	t.attach(a)
	for i := 0; i < 5; i++ {
		t.insertUser(a, newUUID(), "before reinstall")
	}
	t.sync(a)
	path := fmt.Sprintf("%s/device-%d.db", t.dir, len(t.devices))
	t.Must(a.Close())
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	re := t.Device(u) // a new file: a new source
	t.attach(re)
	if n := t.count(re, `SELECT COUNT(*) FROM users`); n != 5 {
		t.Fatalf("reinstalled app has %d users, want 5", n)
	}
	t.insertUser(re, newUUID(), "after reinstall")
	t.sync(re)
	other := t.Device(u)
	t.attach(other)
	t.Converged(u, re, other)
}

func userSwitch(t *T) {
	alice, bob := t.User("alice"), t.User("bob")
	current := alice
	d := t.Device(alice, func(c *device.Config) {
		c.Token = func(ctx context.Context) (string, error) { return t.Token(current)(ctx) }
	})
	t.attach(d)
	for i := 0; i < 3; i++ {
		t.insertUser(d, newUUID(), "alice's")
		t.sync(d)
	}
	bobs := t.Device(bob)
	t.insertUser(bobs, newUUID(), "bob's")
	t.attach(bobs)
	t.Must(d.Detach(t.ctx))
	current = bob
	t.devUser[0] = bob
	t.attach(d)
	t.insertUser(d, newUUID(), "bob on the shared device")
	t.sync(d, bobs) // the stale counter makes the device rotate its source
	t.Converged(bob, d, bobs)
	if t.count(bobs, `SELECT COUNT(*) FROM users WHERE name = 'alice''s'`) != 0 {
		t.Fatalf("alice's rows reached bob")
	}
}

func fkParentChild(t *T) {
	u := t.User("u")
	a, b := t.Device(u), t.Device(u)
	t.attach(a)
	t.attach(b)
	parent := newUUID()
	tx, err := a.DB().BeginTx(t.ctx, nil)
	t.Must(err)
	for i := 0; i < 5; i++ { // children first, then the parent: one bundle
		_, err := tx.ExecContext(t.ctx, `INSERT INTO notes (id, user_id, title, updated_at) VALUES (?, ?, 'child', ?)`, newUUID(), parent, ts)
		t.Must(err)
	}
	_, err = tx.ExecContext(t.ctx, `INSERT INTO users (id, name, created_at) VALUES (?, 'parent', ?)`, parent, ts)
	t.Must(err)
	t.Must(tx.Commit())
	t.rows += 6
	t.sync(a, b)
	t.Converged(u, a, b)
	t.Exec(b, `DELETE FROM users WHERE id = ?`, parent) // cascades
	t.sync(b, a)
	t.Converged(u, a, b)
	if n := t.count(a, `SELECT COUNT(*) FROM notes`); n != 0 {
		t.Fatalf("%d children survived the cascade", n)
	}
}

func columnTypes(t *T) {
	u := t.User("u")
	a, b := t.Device(u), t.Device(u)
	t.attach(a)
	t.attach(b)
	uid := newUUID()
	t.insertUser(a, uid, "Zoë 🚀 <&> \u2028 \"quoted\" \\ 漢字")
	cases := [][]any{
		{nil, nil, nil, nil, nil},
		{"", int64(9223372036854775807), 1.5, []byte{}, `{}`},
		{"\x01 control", int64(-9223372036854775808), -0.000001, []byte{0, 255, 1}, `{"a":[1,2.5,"x"],"b":null}`},
		{"2^53+1", int64(9007199254740993), 1e21, []byte("\x00binary\xff"), `[1,"two",true]`},
		{"tiny", int64(0), 1.5e-7, make([]byte, 4096), `"a string"`},
	}
	for i, c := range cases {
		t.Exec(a, `INSERT INTO notes (id, user_id, title, body, big, score, attachment, meta, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, newUUID(), uid, fmt.Sprintf("case %d", i), c[0], c[1], c[2], c[3], c[4],
			"2026-03-24T18:02:00.123456789+02:00")
	}
	t.Exec(a, `INSERT INTO tags (name) VALUES ('Ünïcødé key / with spaces & <html>')`)
	t.sync(a, b) // through pull
	c := t.Device(u)
	t.attach(c) // through a snapshot
	t.Converged(u, a, b, c)
}

func watchWakeup(t *T) {
	u := t.User("u")
	var logMu sync.Mutex
	var logs []string
	a := t.Device(u, func(c *device.Config) {
		c.Logf = func(format string, args ...any) {
			logMu.Lock()
			logs = append(logs, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
			logMu.Unlock()
		}
	})
	b := t.Device(u)
	t.attach(a)
	t.attach(b)
	caps, err := a.Capabilities(t.ctx)
	t.Must(err)
	if !caps["bundle_change_watch"] {
		t.Skipf("the server does not offer watch to this tenant")
	}
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	events := make(chan device.WatchEvent, 16)
	done := make(chan error, 1)
	go func() { done <- a.Watch(ctx, func(ev device.WatchEvent) { events <- ev }) }()
	time.Sleep(300 * time.Millisecond)
	for i := 0; i < 3; i++ {
		t.insertUser(b, newUUID(), "wake up")
		start := time.Now()
		t.sync(b)
		want, _ := b.State(t.ctx)
		timeout := time.After(15 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond) // a reconnect can catch up without an event
		for a.Checkpoint() < want.Checkpoint {
			select {
			case <-tick.C:
			case ev := <-events:
				if ev.Err != nil && !errors.Is(ev.Err, context.Canceled) {
					t.Fatalf("sync on watch event: %v", ev.Err)
				}
			case <-timeout:
				logMu.Lock()
				t.Fatalf("watch did not deliver bundle %d (committed at %s); watcher log:\n%s", want.Checkpoint,
					start.Format("15:04:05.000"), strings.Join(logs, "\n"))
			}
		}
		tick.Stop()
		t.Logf("bundle %d reached the watcher in %s", want.Checkpoint, time.Since(start).Round(time.Millisecond))
	}
	cancel()
	<-done
	t.Converged(u, a, b)
}

func largePush(t *T) {
	u := t.User("u")
	a := t.Device(u, func(c *device.Config) { c.ChunkSize = 1000 })
	t.attach(a)
	n := t.cfg.LargeRows
	tx, err := a.DB().BeginTx(t.ctx, nil)
	t.Must(err)
	for i := 0; i < n; i++ {
		if _, err := tx.ExecContext(t.ctx, `INSERT INTO tags (name, color) VALUES (?, ?)`, fmt.Sprintf("tag-%07d", i), "c"); err != nil {
			t.Fatalf("%v", err)
		}
	}
	t.Must(tx.Commit())
	t.rows += int64(n)
	start := time.Now()
	t.sync(a)
	el := time.Since(start)
	t.Logf("pushed %d rows in %d-row chunks in %s (%.0f rows/s)", n, 1000, el.Round(time.Millisecond), float64(n)/el.Seconds())
	b := t.Device(u)
	start = time.Now()
	t.attach(b)
	el = time.Since(start)
	t.Logf("hydrated %d rows in %s (%.0f rows/s)", n, el.Round(time.Millisecond), float64(n)/el.Seconds())
	t.Converged(u, a, b)
}

// serverWrite posts a server-originated write (protocol 11) for user.
func (t *T) serverWrite(user string, ops []map[string]any) {
	if t.cfg.SecretKey == "" {
		t.Skipf("needs a secret API key (--secret-key)")
	}
	host := t.cfg.BaseURL
	if i := strings.Index(host, "/k/"); i >= 0 {
		host = host[:i]
	}
	body, err := json.Marshal(map[string]any{"writer_id": "server:sim", "ops": ops})
	t.Must(err)
	req, err := http.NewRequestWithContext(t.ctx, http.MethodPost, host+"/v1/users/"+url.PathEscape(user)+"/writes", bytes.NewReader(body))
	t.Must(err)
	req.Header.Set("Authorization", "Bearer "+t.cfg.SecretKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	t.Must(err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("server write: %d %s", resp.StatusCode, data)
	}
}

func serverWrites(t *T) {
	u := t.User("u")
	uid, nid := newUUID(), newUUID()
	// A write for a user nobody attached yet initializes the account.
	t.serverWrite(u, []map[string]any{
		{"table": "users", "op": "upsert", "key": uid, "payload": map[string]any{"name": "from the backend", "created_at": ts}},
	})
	a := t.Device(u)
	t.insertUser(a, newUUID(), "anonymous, discarded")
	t.attach(a) // remote_authoritative
	if n := t.count(a, `SELECT COUNT(*) FROM users WHERE id = ?`, uid); n != 1 {
		t.Fatalf("the server-written row did not reach the first device")
	}
	// Later writes arrive through pull, including cascades.
	t.serverWrite(u, []map[string]any{
		{"table": "notes", "op": "upsert", "key": nid, "payload": map[string]any{"user_id": uid, "title": "server note", "updated_at": ts,
			"attachment": "AAEC", "big": json.Number("9223372036854775807")}},
		{"table": "users", "op": "upsert", "key": uid, "payload": map[string]any{"email": "backend@example.com"}},
	})
	t.sync(a)
	if n := t.count(a, `SELECT COUNT(*) FROM notes WHERE id = ? AND big = 9223372036854775807 AND attachment = X'000102'`, nid); n != 1 {
		t.Fatalf("the server-written note did not arrive intact")
	}
	t.serverWrite(u, []map[string]any{{"table": "users", "op": "delete", "key": uid}})
	t.sync(a)
	if n := t.count(a, `SELECT COUNT(*) FROM notes`); n != 0 {
		t.Fatalf("the server-side cascade did not reach the device")
	}
	b := t.Device(u)
	t.attach(b)
	t.Converged(u, a, b)
}

func historyPruned(t *T) {
	w := t.cfg.RetainedWindow
	if w <= 0 || w > 200 {
		t.Skipf("needs a tenant with a small retained window (set RetainedWindow, at most 200)")
	}
	u := t.User("u")
	a, b := t.Device(u), t.Device(u)
	uid := newUUID()
	t.insertUser(a, uid, "v0")
	t.attach(a)
	t.attach(b) // checkpoint 1
	// b goes offline with an edit while a commits past the window.
	t.Exec(b, `UPDATE users SET email = 'offline@example.com' WHERE id = ?`, uid)
	for i := 0; i < w+2; i++ {
		t.insertUser(a, newUUID(), fmt.Sprintf("bundle %d", i))
		t.sync(a)
	}
	src := b.SourceID()
	t.sync(b, b) // push (ok), pull: history_pruned -> keep-source snapshot rebuild
	t.sync(a)
	t.Converged(u, a, b)
	if b.SourceID() != src {
		t.Fatalf("a keep-source rebuild changed the source")
	}
	if t.count(a, `SELECT COUNT(*) FROM users WHERE email = 'offline@example.com'`) != 1 {
		t.Fatalf("b's offline edit was lost")
	}
	t.Logf("b rebuilt from a snapshot at bundle %d", b.Checkpoint())
}
