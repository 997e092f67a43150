package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// WriteInterval is how often the client writes to each member.
const WriteInterval = 50 * time.Millisecond

// Ack is one acknowledged write: its id committed on Member. Times are
// offsets from the run's monotonic start.
type Ack struct {
	ID     int64
	Member string
	// Sent is when the INSERT was sent, At when its commit was
	// acknowledged, ConnAt when the connection it used was opened.
	Sent, At, ConnAt time.Duration
}

// clock gives monotonic offsets from one start.
type clock struct{ t0 time.Time }

func (c clock) now() time.Duration { return time.Since(c.t0) }

// dsn is a superuser connection string to a member.
func dsn(s System, name string) string {
	u, pw := s.Superuser()
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=postgres sslmode=disable connect_timeout=1 application_name=regent-bench",
		member(s, name).PGPort, u, pw)
}

// writer inserts a new id every WriteInterval into every member, each
// through its own connection, and records every acknowledged commit.
// Writes on replicas fail (read-only) and are simply retried; a broken
// connection is reopened at the next tick.
type writer struct {
	clk    clock
	ids    *atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	acks []Ack
	errs int
}

func startWriter(ctx context.Context, s System, clk clock, ids *atomic.Int64) *writer {
	ctx, cancel := context.WithCancel(ctx)
	w := &writer{clk: clk, ids: ids, cancel: cancel}
	for _, m := range s.Members() {
		w.wg.Add(1)
		go w.loop(ctx, m.Name, dsn(s, m.Name))
	}
	return w
}

func (w *writer) loop(ctx context.Context, name, connStr string) {
	defer w.wg.Done()
	var conn *pgx.Conn
	var connAt time.Duration
	defer func() {
		if conn != nil {
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = conn.Close(cctx)
			cancel()
		}
	}()
	tick := time.NewTicker(WriteInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			c, err := pgx.Connect(cctx, connStr)
			cancel()
			if err != nil {
				continue
			}
			conn, connAt = c, w.clk.now()
		}
		id := w.ids.Add(1)
		sent := w.clk.now()
		ectx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := conn.Exec(ectx, "INSERT INTO bench_writes (id, member) VALUES ($1, $2)", id, name)
		cancel()
		at := w.clk.now()
		if err == nil {
			w.mu.Lock()
			w.acks = append(w.acks, Ack{ID: id, Member: name, Sent: sent, At: at, ConnAt: connAt})
			w.mu.Unlock()
			continue
		}
		w.mu.Lock()
		w.errs++
		w.mu.Unlock()
		var pgErr *pgconn.PgError
		if conn.IsClosed() || !errors.As(err, &pgErr) || pgErr.Severity == "FATAL" || pgErr.Severity == "PANIC" {
			cctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			_ = conn.Close(cctx)
			cancel()
			conn = nil
		}
	}
}

// snapshot returns the acknowledged writes so far, in acknowledgement
// order.
func (w *writer) snapshot() []Ack {
	w.mu.Lock()
	out := append([]Ack(nil), w.acks...)
	w.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// first returns the first acknowledged write accepted by pred.
func (w *writer) first(pred func(Ack) bool) (Ack, bool) {
	for _, a := range w.snapshot() {
		if pred(a) {
			return a, true
		}
	}
	return Ack{}, false
}

// stop ends the writers and returns every acknowledged write.
func (w *writer) stop() []Ack {
	w.cancel()
	w.wg.Wait()
	return w.snapshot()
}

// pollEvent is one answer of GET /primary.
type pollEvent struct {
	Member string
	At     time.Duration
	Code   int
}

// poller asks every member's GET /primary every WriteInterval.
type poller struct {
	clk    clock
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	events []pollEvent
}

func startPoller(ctx context.Context, s System, clk clock) *poller {
	ctx, cancel := context.WithCancel(ctx)
	p := &poller{clk: clk, cancel: cancel}
	for _, m := range s.Members() {
		p.wg.Add(1)
		go p.loop(ctx, m.Name, s.APIURL(m.Name)+"/primary")
	}
	return p
}

func (p *poller) loop(ctx context.Context, name, url string) {
	defer p.wg.Done()
	client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(WriteInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		code := 0
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		p.mu.Lock()
		p.events = append(p.events, pollEvent{Member: name, At: p.clk.now(), Code: code})
		p.mu.Unlock()
	}
}

func (p *poller) first(pred func(pollEvent) bool) (pollEvent, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.events {
		if pred(e) {
			return e, true
		}
	}
	return pollEvent{}, false
}

func (p *poller) stop() {
	p.cancel()
	p.wg.Wait()
}

// httpStatus returns the status code of GET url, 0 on error.
func httpStatus(ctx context.Context, url string, timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// APIResult is the outcome of the GET /primary load test.
type APIResult struct {
	Clients  int
	Duration time.Duration
	OK       int
	Errors   int
	RPS      float64
	P50, P99 time.Duration
}

// loadPrimary runs clients goroutines that GET url back to back for d,
// each over its own keep-alive connection (when the server keeps it
// open), and returns throughput and latency of the 200 answers.
func loadPrimary(ctx context.Context, url string, clients int, d time.Duration) APIResult {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxIdleConns: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	lats := make([][]time.Duration, clients)
	errs := make([]int, clients)
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := client.Do(req)
				if err != nil {
					errs[i]++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs[i]++
					continue
				}
				lats[i] = append(lats[i], time.Since(t))
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	r := APIResult{Clients: clients, Duration: elapsed}
	for i := range lats {
		all = append(all, lats[i]...)
		r.Errors += errs[i]
	}
	r.OK = len(all)
	r.RPS = float64(r.OK) / elapsed.Seconds()
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r.P50 = percentile(all, 0.50)
	r.P99 = percentile(all, 0.99)
	return r
}

// percentile of sorted durations (nearest rank); 0 when empty.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}
