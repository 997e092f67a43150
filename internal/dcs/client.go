// Package dcs stores Regent's cluster state in etcd with Patroni's key layout and write guards.
package dcs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Connection defaults. They only govern the transport; the HA timing comes
// from the dynamic configuration through Options.TTL and
// Options.RequestTimeout.
const (
	// DefaultDialTimeout is used when Options.DialTimeout is zero.
	DefaultDialTimeout = 5 * time.Second
	// keepAliveTime is the gRPC keep-alive ping interval on an idle
	// connection. etcd refuses pings more often than every 5 s
	// (--grpc-keepalive-min-time), so stay above that.
	keepAliveTime = 10 * time.Second
	// keepAliveTimeout is how long a ping may go unanswered before the
	// connection is considered dead and re-dialled.
	keepAliveTimeout = 5 * time.Second
)

// Options configure a Client.
type Options struct {
	// Endpoints are the etcd client URLs.
	Endpoints []string
	// TLS is the client TLS configuration; nil means plaintext.
	TLS *tls.Config
	// Username and Password authenticate to etcd when Username is set.
	Username, Password string
	// DialTimeout bounds Open's connection check; DefaultDialTimeout if 0.
	DialTimeout time.Duration
	// Prefix is the cluster's key prefix, e.g. "/service/demo/".
	Prefix string
	// Name is this member's name. Needed by the member and leader methods.
	Name string
	// TTL is the lease TTL, rounded up to whole seconds. Needed by
	// RefreshLease; SetTTL changes it.
	TTL time.Duration
	// RequestTimeout bounds each request (retry_timeout); 0 means only the
	// caller's context bounds it.
	RequestTimeout time.Duration
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// Client is Regent's connection to etcd for one member of one cluster. Its
// methods are safe for concurrent use.
type Client struct {
	cli    *clientv3.Client
	opts   Options
	prefix string
	scope  string
	log    *slog.Logger

	// refreshMu serialises RefreshLease so one call cannot grant a lease
	// that another concurrent call then overwrites.
	refreshMu sync.Mutex

	mu  sync.Mutex
	ttl time.Duration // TTL of leases granted from now on (SetTTL)
	// requestTimeout bounds each request (SetRequestTimeout).
	requestTimeout time.Duration
	// lease is the current lease: keys are written on it.
	lease LeaseState
	// moving is the lease MoveLease granted and is moving the keys to,
	// while etcd has not answered the move (nil otherwise).
	moving    *LeaseState
	leaseGone bool // the last request said the lease no longer exists
	loadedRev int64
	member    writeCache
	status    writeCache
	// lastFailsafe is the failsafe value this client last wrote.
	lastFailsafe string
}

// writeCache remembers the last value this client wrote to a key, to skip
// rewriting an unchanged value.
type writeCache struct {
	valid bool
	value string
	lease clientv3.LeaseID
}

// Open connects to etcd and checks within DialTimeout that the cluster
// answers a linearizable read. It does not retry: callers retry Open.
func Open(ctx context.Context, o Options) (*Client, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("dcs: no etcd endpoints configured; set etcd.endpoints")
	}
	if o.Prefix == "" || o.Prefix == "/" {
		return nil, errors.New("dcs: empty key prefix; set the namespace and scope")
	}
	if strings.Contains(o.Name, "/") {
		return nil, fmt.Errorf("dcs: member name %q must not contain '/'", o.Name)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            o.Endpoints,
		TLS:                  o.TLS,
		Username:             o.Username,
		Password:             o.Password,
		DialTimeout:          o.DialTimeout,
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: keepAliveTimeout,
		// Regent logs through slog; the client's own retries are noise.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, connectError(o, err)
	}
	cctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	if _, err := cli.Get(cctx, o.Prefix+KeyLeader, clientv3.WithCountOnly()); err != nil {
		_ = cli.Close()
		return nil, connectError(o, err)
	}
	return &Client{
		cli:            cli,
		opts:           o,
		ttl:            o.TTL,
		requestTimeout: o.RequestTimeout,
		prefix:         o.Prefix,
		scope:          scopeOf(o.Prefix),
		log:            log,
	}, nil
}

// connectError turns a failed connection check into an actionable message.
func connectError(o Options, err error) error {
	for _, authErr := range []error{
		rpctypes.ErrAuthFailed, rpctypes.ErrUserEmpty, rpctypes.ErrUserNotFound,
		rpctypes.ErrInvalidAuthToken, rpctypes.ErrAuthNotEnabled,
	} {
		if errors.Is(err, authErr) {
			return fmt.Errorf("dcs: etcd at %v rejected the credentials of user %q: %w; check etcd.username and etcd.password",
				o.Endpoints, o.Username, err)
		}
	}
	if errors.Is(err, rpctypes.ErrPermissionDenied) {
		return fmt.Errorf("dcs: etcd at %v: user %q may not read %s: %w; grant the user read-write access to the prefix",
			o.Endpoints, o.Username, o.Prefix, err)
	}
	return fmt.Errorf("dcs: etcd at %v is unreachable: %w; check etcd.endpoints and that etcd is running", o.Endpoints, err)
}

// Close releases the connection. It does not revoke the lease: keys on it
// expire after the TTL unless deleted first (ReleaseLeader, DeleteMember).
func (c *Client) Close() error {
	if err := c.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("dcs: close: %w", err)
	}
	return nil
}

// Prefix returns the key prefix, ending with "/".
func (c *Client) Prefix() string { return c.prefix }

// Name returns this member's name.
func (c *Client) Name() string { return c.opts.Name }

// requestContext bounds one request by RequestTimeout.
func (c *Client) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	c.mu.Lock()
	d := c.requestTimeout
	c.mu.Unlock()
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// SetRequestTimeout changes the bound of each request (retry_timeout of
// the dynamic configuration).
func (c *Client) SetRequestTimeout(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requestTimeout = d
}

// key returns the full key of a name relative to the prefix.
func (c *Client) key(name string) string { return c.prefix + name }

// requireName fails when the client was opened without a member name.
func (c *Client) requireName(op string) error {
	if c.opts.Name == "" {
		return fmt.Errorf("dcs: %s: client has no member name", op)
	}
	return nil
}
