package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// connPool is a tiny pool of superuser connections to the local server:
// at most max connections are in use at once and idle ones are reused.
// (pgxpool is not used to keep the dependency set small.)
type connPool struct {
	sem     chan struct{}
	connect func(context.Context) (*pgx.Conn, error)

	mu   sync.Mutex
	idle []*pgx.Conn
	gen  int // bumped by reset; older connections are not reused
}

func newConnPool(max int, connect func(context.Context) (*pgx.Conn, error)) *connPool {
	return &connPool{sem: make(chan struct{}, max), connect: connect}
}

func (p *connPool) generation() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gen
}

// reset closes the idle connections; connections in use are closed when
// returned.
func (p *connPool) reset() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.gen++
	p.mu.Unlock()
	for _, c := range idle {
		closeConn(c)
	}
}

// put returns a healthy connection to the pool.
func (p *connPool) put(c *pgx.Conn, gen int) {
	p.mu.Lock()
	if gen == p.gen && !c.IsClosed() && len(p.idle) < cap(p.sem) {
		p.idle = append(p.idle, c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		closeConn(c)
	}
}

func (p *connPool) get(ctx context.Context) (c *pgx.Conn, gen int, reused bool, err error) {
	p.mu.Lock()
	gen = p.gen
	if n := len(p.idle); n > 0 {
		c = p.idle[n-1]
		p.idle = p.idle[:n-1]
	}
	p.mu.Unlock()
	if c != nil {
		return c, gen, true, nil
	}
	c, err = p.connect(ctx)
	return c, gen, false, err
}

// with runs fn on a pooled connection. A connection that fails with
// anything but an SQL error is discarded; if a reused connection turns out
// to be dead (the server restarted), fn is retried once on a new one.
func (p *connPool) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.sem }()
	for attempt := 0; ; attempt++ {
		c, gen, reused, err := p.get(ctx)
		if err != nil {
			return err
		}
		err = fn(c)
		var pgErr *pgconn.PgError
		if err == nil || (errors.As(err, &pgErr) && !c.IsClosed() && c.PgConn().TxStatus() == 'I') {
			p.put(c, gen)
			return err
		}
		dead := c.IsClosed()
		closeConn(c)
		if reused && attempt == 0 && ctx.Err() == nil && (dead || pgconn.SafeToRetry(err)) {
			continue
		}
		return err
	}
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

// connect opens a superuser connection to the local server over TCP.
func (i *Instance) connect(ctx context.Context) (*pgx.Conn, error) {
	return i.connectDB(ctx, "postgres")
}

// connectDB opens a superuser connection to database db of the local
// server over TCP.
func (i *Instance) connectDB(ctx context.Context, db string) (*pgx.Conn, error) {
	cs := renderConnParams([]connParam{
		{"host", i.connectH},
		{"port", strconv.Itoa(i.listenP)},
		{"dbname", db},
		{"sslmode", "disable"},
		{"connect_timeout", "2"},
		{"application_name", "regent"},
	})
	cfg, err := pgx.ParseConfig(cs)
	if err != nil {
		return nil, fmt.Errorf("connection config: %w", err)
	}
	_, su, _ := i.Access()
	cfg.User, cfg.Password = su.Username, su.Password
	cfg.ConnectTimeout = 2 * time.Second
	cfg.Fallbacks = nil
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s:%d as %s: %w", i.connectH, i.listenP, cfg.User, err)
	}
	return c, nil
}

// ProbeConnect opens a new connection and closes it. The status query runs
// on pooled connections, which keep working when the postmaster itself is
// stopped or hung; only a new connection shows that clients can still get
// in.
func (i *Instance) ProbeConnect(ctx context.Context) error {
	c, err := i.connect(ctx)
	if err != nil {
		return err
	}
	closeConn(c)
	return nil
}
