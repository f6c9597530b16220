package loadgen

import (
	"context"
	"fmt"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// WatchResult is the figures of WorkloadWatchers.
type WatchResult struct {
	Watchers int     `json:"watchers"`
	Open     int     `json:"open"`
	Users    int     `json:"users"`
	OpenS    float64 `json:"open_s"`
	Commits  int     `json:"commits"`
	// Missed counts commits after which not every watcher of the user was
	// woken within 5 s.
	Missed int `json:"missed"`
	// AllWokenFromSend: per commit, the time from sending the commit request
	// until the last watcher of the user received the event (an upper bound
	// of commit→wake-up). AllWokenFromAnswer measures from the commit's 200.
	AllWokenFromSend   Latency `json:"all_woken_from_commit_sent"`
	AllWokenFromAnswer Latency `json:"all_woken_from_commit_answered"`
	// EachFromSend: every single watcher's wake-up, from commit sent.
	EachFromSend Latency `json:"each_watcher_from_commit_sent"`
	Commit       Latency `json:"commit"`
	// RepMediansMS is AllWokenFromSend's median per repetition.
	RepMediansMS []float64 `json:"rep_medians_ms"`
	// MedianOfRepsMS is the median of RepMediansMS: the headline figure.
	MedianOfRepsMS float64 `json:"median_of_reps_ms"`
}

// watchUser is one user with its watchers and the commit in flight.
type watchUser struct {
	writer   *httpDevice
	mu       gosync.Mutex
	active   bool
	gen      int
	base     int64 // highest bundle_seq before the commit in flight
	sent     time.Time
	answered time.Time
	want     int
	got      int
	done     chan struct{}
	last     int64
	hook     func(d time.Duration, all bool)
}

type watcherState struct{ lastGen int }

// watchers opens cfg.Watchers watch streams (light mode, whatever Mode
// says), then commits one row at a time for users and measures how long
// until every watcher of that user got the event.
func (r *runner) watchers(ctx context.Context, res *Result) error {
	tenants := r.mainTenants()
	nUsers := max(1, (r.cfg.Watchers+r.cfg.WatchersPerUser-1)/r.cfg.WatchersPerUser)
	users := make([]*watchUser, nUsers)
	setup := time.Now()
	r.phase("initializing %d users on %d tenant(s)", nUsers, len(tenants))
	bar := r.bar(int64(nUsers), "users")
	var firstErr error
	var errMu gosync.Mutex
	sem := make(chan struct{}, r.cfg.AttachParallel)
	var wg gosync.WaitGroup
	for i := range users {
		t := tenants[i%len(tenants)]
		user := fmt.Sprintf("lg-%s-w%d", r.runID, i)
		tok, err := t.token(user)
		if err != nil {
			return err
		}
		w := &httpDevice{hc: r.hc, base: r.cfg.URL + "/k/" + t.PublishableKey, token: tok, source: "lg-writer-" + uuid.NewString(),
			wire: t.wire(), chunkSize: 1000}
		users[i] = &watchUser{writer: w}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done(); bar.Add(1) }()
			if err := w.attach(ctx); err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	_ = bar.Finish()
	if firstErr != nil {
		return fmt.Errorf("loadgen: initialize watcher users: %w", firstErr)
	}

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	r.phase("opening %d watch streams", r.cfg.Watchers)
	bar = r.bar(int64(r.cfg.Watchers), "watch")
	openStart := time.Now()
	var open, failed atomic.Int64
	var openWG, runWG gosync.WaitGroup
	for i := range r.cfg.Watchers {
		u := users[i%nUsers]
		wd := *u.writer
		wd.source = "lg-watch-" + uuid.NewString()
		ws := &watcherState{}
		sem <- struct{}{}
		openWG.Add(1)
		runWG.Add(1)
		var once gosync.Once
		go func() {
			defer runWG.Done()
			wd.watch(wctx, 0, func(err error) {
				once.Do(func() {
					if err == nil {
						open.Add(1)
					} else {
						failed.Add(1)
						errMu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						errMu.Unlock()
					}
					bar.Add(1)
					<-sem
					openWG.Done()
				})
			}, func(seq int64) { u.event(ws, seq) })
		}()
	}
	openWG.Wait()
	_ = bar.Finish()
	wr := &WatchResult{Watchers: r.cfg.Watchers, Open: int(open.Load()), Users: nUsers, OpenS: time.Since(openStart).Seconds()}
	res.Watch = wr
	res.SetupS = time.Since(setup).Seconds()
	if failed.Load() > 0 {
		r.phase("warning: %d watch streams failed to open; first error: %v", failed.Load(), firstErr)
	}
	perUser := make([]int, nUsers)
	for i := range r.cfg.Watchers {
		perUser[i%nUsers]++
	}
	for i, u := range users {
		u.mu.Lock()
		u.want = perUser[i]
		u.mu.Unlock()
	}

	var sendAll, answerAll, each, commits []time.Duration
	var mu gosync.Mutex
	measureStart := time.Now()
	next := 0
	var nextMu gosync.Mutex
	for rep := range r.cfg.Reps {
		r.phase("repetition %d/%d: %d commits", rep+1, r.cfg.Reps, r.cfg.Commits)
		bar = r.bar(int64(r.cfg.Commits), fmt.Sprintf("rep %d", rep+1))
		var repSend []time.Duration
		var remaining atomic.Int64
		remaining.Store(int64(r.cfg.Commits))
		var cw gosync.WaitGroup
		for range r.cfg.CommitConcurrency {
			cw.Add(1)
			go func() {
				defer cw.Done()
				for remaining.Add(-1) >= 0 && ctx.Err() == nil {
					nextMu.Lock()
					u := users[next%nUsers]
					next++
					nextMu.Unlock()
					s, a, e, c, ok := u.commit(ctx)
					mu.Lock()
					if ok {
						sendAll = append(sendAll, s)
						answerAll = append(answerAll, a)
						repSend = append(repSend, s)
						commits = append(commits, c)
					} else {
						wr.Missed++
					}
					each = append(each, e...)
					wr.Commits++
					mu.Unlock()
					bar.Add(1)
				}
			}()
		}
		cw.Wait()
		_ = bar.Finish()
		if l := summarize(repSend); l.Count > 0 {
			wr.RepMediansMS = append(wr.RepMediansMS, l.P50)
		}
	}
	res.ElapsedS = time.Since(measureStart).Seconds()
	wr.AllWokenFromSend = summarize(sendAll)
	wr.AllWokenFromAnswer = summarize(answerAll)
	wr.EachFromSend = summarize(each)
	wr.Commit = summarize(commits)
	wr.MedianOfRepsMS = median(wr.RepMediansMS)
	res.StoppedBy = "commits"
	if ctx.Err() != nil {
		res.StoppedBy = "max_time"
	}
	if r.rss != nil {
		res.Server = r.rss.stats() // before the streams close
	}
	stopWatch()
	runWG.Wait()
	res.Main = r.rec.group(GroupMain).result(time.Since(setup), len(tenants), r.cfg.Watchers)
	return nil
}

// commit pushes one row for u and waits until all of u's watchers saw it
// (or 5 s). It returns the all-woken latency from the commit request and
// from its answer, each watcher's latency, and the commit's own latency.
func (u *watchUser) commit(ctx context.Context) (fromSend, fromAnswer time.Duration, each []time.Duration, commit time.Duration, ok bool) {
	u.mu.Lock()
	u.gen++
	u.base = u.last
	u.got = 0
	u.active = false
	done := make(chan struct{})
	u.done = done
	var eachMu gosync.Mutex
	var lat []time.Duration
	var allAt time.Time
	u.mu.Unlock()
	u.writer.beforeCommit = func() {
		u.mu.Lock()
		u.sent = time.Now()
		u.active = true
		u.mu.Unlock()
	}
	u.writer.afterCommit = func() {
		u.mu.Lock()
		u.answered = time.Now()
		u.mu.Unlock()
	}
	eachHook := func(d time.Duration, all bool) {
		eachMu.Lock()
		lat = append(lat, d)
		if all {
			allAt = time.Now()
		}
		eachMu.Unlock()
	}
	u.mu.Lock()
	u.hook = eachHook
	u.mu.Unlock()
	err := u.writer.push(ctx, 1)
	if err != nil {
		u.mu.Lock()
		u.active = false
		u.mu.Unlock()
		return 0, 0, nil, 0, false
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
	}
	u.mu.Lock()
	u.active = false
	sent, answered := u.sent, u.answered
	complete := u.got >= u.want
	u.mu.Unlock()
	eachMu.Lock()
	defer eachMu.Unlock()
	if !complete {
		return 0, 0, lat, answered.Sub(sent), false
	}
	return allAt.Sub(sent), max(0, allAt.Sub(answered)), lat, answered.Sub(sent), true
}

// event is a watcher's wake-up for seq.
func (u *watchUser) event(ws *watcherState, seq int64) {
	now := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.last = max(u.last, seq)
	if !u.active || seq <= u.base || ws.lastGen == u.gen {
		return
	}
	ws.lastGen = u.gen
	u.got++
	all := u.got == u.want
	if u.hook != nil {
		u.hook(now.Sub(u.sent), all)
	}
	if all {
		close(u.done)
	}
}
