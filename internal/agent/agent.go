// Package agent runs one Regent member: it observes etcd and the local
// PostgreSQL, asks the pure decision core (package ha) what to do, executes
// the answer, publishes the member's state to the DCS and the REST API, and
// enforces the lease deadline between loops.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regent-ha/regent/internal/api"
	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/config"
	"github.com/regent-ha/regent/internal/dcs"
	"github.com/regent-ha/regent/internal/ha"
	"github.com/regent-ha/regent/internal/metrics"
	"github.com/regent-ha/regent/internal/postgres"
	"github.com/regent-ha/regent/internal/sdnotify"
	"github.com/regent-ha/regent/internal/slots"
)

// Version is the agent version advertised in member keys and the API.
var Version = "0.1.0"

// ErrRefused is returned by Run when continuing could destroy data; the
// error's text says what is wrong and what to do.
var ErrRefused = errors.New("refused")

// Agent is one running member.
type Agent struct {
	cfg  *config.Config
	log  *slog.Logger
	pg   *postgres.Instance
	dcs  *dcs.Client
	pub  *api.Publisher
	wake chan struct{}

	// dyn is the effective dynamic configuration.
	dyn cluster.DynamicConfig
	// configProblem is why the config key cannot be used, as last
	// reported (dynconfig.go), and configProblemLoggedAt when it was logged.
	configProblem         string
	configProblemLoggedAt time.Time

	// State carried from one loop to the next. Only the loop goroutine
	// touches it, except where noted.
	keyOnMyLease bool
	// replicationRoleDue is set when this member adopted an existing data
	// directory (claimInitialize): its next leader housekeeping creates
	// the replication role, as a bootstrap does after initdb.
	replicationRoleDue bool
	lease              dcs.LeaseState
	downSince          time.Time
	expectRunning      bool
	startFailed        bool
	// rejoin is the last failed rewind, clone or post-rewind start and
	// its retry schedule.
	rejoin            rejoinRetry
	notStreamingSince time.Time
	lastKnownPrimary  bool
	following         string
	lastTimeline      int
	// syncSetLSN and syncSetAt: see Postgres.SyncSetLSN in package ha.
	syncSetLSN      int64
	syncSetAt       time.Time
	pendingRestart  map[string]cluster.ParamChange
	replicaTimeline int
	// upstream is the leader (name and timeline) the replica was last
	// asked to follow; a change restarts the not-streaming clock.
	upstream string
	lastView *cluster.Cluster
	// slotRetention remembers when each member slot was last current
	// (member_slots_ttl).
	slotRetention slots.Retention
	dcsLastSeen   time.Time
	lastDecision  ha.Decision
	lastPG        postgres.State
	pgAnswered    bool
	// receiver watches for a WAL receiver that has just started;
	// recheckSoon makes the next loop come after receiverRecheck.
	receiver    receiverWatch
	recheckSoon bool

	// checkpointPending is set by Promote and cleared by the checkpoint
	// task.
	checkpointPending bool
	// releasePending is set when a release of the leader key got no
	// answer: the delete may still be applied later, so the key may be
	// gone although the last view showed it on our lease. While set, every
	// loop retries the (idempotent) release first and stillHoldsClaim
	// refuses to make PostgreSQL writable; it is cleared by any answer to
	// the release or a view in which the key no longer names this member.
	releasePending bool

	task    *task
	guard   *leaseGuard
	suspend suspendDetector
	fence   *fenceProc

	failsafe failsafeState
	// unansweredSince is when the running PostgreSQL first failed to
	// answer (loop goroutine only).
	unansweredSince time.Time
	// refusalRecordedAt is when the current episode of refused
	// promotions was last recorded in the DCS (zero: none running).
	refusalRecordedAt time.Time
	watchdog          kernelWatchdog
	metrics           *metrics.Metrics
	fencing           atomic.Bool // a fence is stopping PostgreSQL right now
	peerOnce          sync.Once
	peerHTTP          *http.Client

	// requests carries operator actions from REST handlers to the loop.
	requests         chan *request
	scheduledRestart *api.RestartRequest
	// configPath is the member file, reread on reload ("" = not known).
	configPath string
	// api is the REST server, whose access rules and certificate a
	// reload replaces; logLevel, when set, is the logger's level.
	api      *api.Server
	logLevel *slog.LevelVar
	// notify tells systemd about start-up, reloads and shutdown and feeds
	// its watchdog (nil: not run by systemd with Type=notify).
	notify *sdnotify.Notifier
	// readySent and watchdogFed: see loopDone.
	readySent   bool
	watchdogFed time.Time
	// life drives the user's callbacks (callbacks.go).
	life lifecycle
}

// New prepares an agent. It checks the PostgreSQL binaries but does not
// contact etcd yet.
func New(cfg *config.Config, logger *slog.Logger) (*Agent, error) {
	logger = logger.With("cluster", cfg.Scope, "member", cfg.Name)
	pg, err := postgres.New(postgresOptions(cfg, cfg.Bootstrap.DCS, logger))
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:      cfg,
		log:      logger,
		pg:       pg,
		pub:      &api.Publisher{},
		wake:     make(chan struct{}, 1),
		dyn:      cfg.Bootstrap.DCS,
		requests: make(chan *request),
	}
	a.metrics = metrics.New(a.pub)
	a.life.runner = newCallbackRunner(a)
	a.guard = newLeaseGuard(func(reason string, fenceTimeout time.Duration) {
		a.metrics.RecordFence(metrics.FenceGuardTimer)
		a.fenceNow(reason, fenceTimeout)
	}, logger)
	return a, nil
}

func postgresOptions(cfg *config.Config, dyn cluster.DynamicConfig, logger *slog.Logger) postgres.Options {
	params := mergedParameters(dyn, cfg.PostgreSQL.Parameters)
	su, _ := cfg.PostgreSQL.Authentication.Superuser.Password.Value()
	rp, _ := cfg.PostgreSQL.Authentication.Replication.Password.Value()
	return postgres.Options{
		BinDir:          cfg.PostgreSQL.BinDir,
		DataDir:         cfg.PostgreSQL.DataDir,
		Listen:          cfg.PostgreSQL.Listen,
		RunAsUser:       cfg.PostgreSQL.RunAsUser,
		Superuser:       postgres.Credentials{Username: cfg.PostgreSQL.Authentication.Superuser.Username, Password: su},
		Replication:     postgres.Credentials{Username: cfg.PostgreSQL.Authentication.Replication.Username, Password: rp},
		Parameters:      params,
		PgHBA:           cfg.PostgreSQL.PgHBA,
		Logger:          logger,
		ApplicationName: cfg.Name,
	}
}

// Run runs the member until ctx ends. It returns an error wrapping
// ErrRefused when it must not continue (foreign data directory, duplicate
// member name).
func (a *Agent) Run(ctx context.Context) error {
	defer a.pg.Close()
	defer a.life.runner.Close()
	client, err := a.connect(ctx)
	if err != nil {
		return err
	}
	a.dcs = client
	defer client.Close()

	if a.duplicateName(ctx, client) {
		return fmt.Errorf("%w: another running member already uses the name %q in cluster %q; give each member a unique name",
			ErrRefused, a.cfg.Name, a.cfg.Scope)
	}

	a.readDynamicConfig(ctx, client)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	srv, err := a.apiServer(client)
	if err != nil {
		return err
	}
	ln, err := api.Listen(a.cfg.RestAPI.Listen)
	if err != nil {
		return err
	}
	apiErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		apiErr <- srv.Serve(ctx, ln)
	}()

	events := client.Watch(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.forward(ctx, events, a.pg.Exited())
	}()

	a.probeRequiredWatchdog()
	a.log.Info("agent started", "version", Version, "data_dir", a.cfg.PostgreSQL.DataDir,
		"restapi", a.cfg.RestAPI.Listen, "postgresql", a.cfg.PostgreSQL.Listen)
	for _, w := range config.MisspeltTags(a.cfg.Tags) {
		a.log.Warn(w)
	}
	if a.cfg.Tags.NoStream {
		a.log.Warn("tag nostream: no member keeps a slot for this member, it keeps no slot copies and is never synchronous, but as a replica it still streams from its upstream (Regent has no archive-only replicas yet)")
	}
	for {
		if err := a.loop(ctx); err != nil {
			return err
		}
		a.loopDone()
		select {
		case <-ctx.Done():
			a.shutdown()
			return nil
		case err := <-apiErr:
			if err != nil {
				return fmt.Errorf("REST API: %w", err)
			}
		case <-a.wake:
			// A DCS event or a postmaster exit: run the loop at once,
			// but not more than every few milliseconds.
			time.Sleep(minLoopGap)
		case err := <-a.taskDoneChan():
			a.finishTask(a.task, err)
		case r := <-a.requests:
			a.serve(ctx, r)
		case <-time.After(a.loopWait()):
		}
	}
}

// loopWait is the pause before the next loop without events: loop_wait;
// receiverRecheck while a WAL receiver has just started (receiverWatch);
// at most a second while the lease still has another TTL than the
// configured one, so that a failed move is retried well within the
// (smaller) deadline.
func (a *Agent) loopWait() time.Duration {
	if a.recheckSoon {
		return receiverRecheck
	}
	d := a.dyn.LoopWaitDuration()
	if a.dcs.LeaseTTLOutdated() {
		d = min(d, time.Second)
	}
	if iv := a.notify.WatchdogInterval(); iv > 0 {
		d = min(d, iv)
	}
	return d
}

// minLoopGap coalesces bursts of DCS events into one loop run.
const minLoopGap = 20 * time.Millisecond

// forward turns watch events and postmaster exits into loop wake-ups.
func (a *Agent) forward(ctx context.Context, events <-chan struct{}, exited <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
		case <-exited:
			a.log.Warn("postmaster exited")
		}
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

// connect opens the DCS, retrying with a clear message until ctx ends.
func (a *Agent) connect(ctx context.Context) (*dcs.Client, error) {
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		client, err := dcs.Open(ctx, a.dcsOptions())
		if err == nil {
			if attempt > 1 {
				a.log.Info("connected to etcd", "attempts", attempt)
			}
			return client, nil
		}
		a.log.Error("cannot reach etcd; retrying", "err", err, "attempt", attempt, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("gave up connecting to etcd: %w", err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (a *Agent) dcsOptions() dcs.Options {
	pw, _ := a.cfg.Etcd.Password.Value()
	tlsCfg, _ := a.cfg.Etcd.TLSConfig()
	return dcs.Options{
		Endpoints:      a.cfg.Etcd.Endpoints,
		TLS:            tlsCfg,
		Username:       a.cfg.Etcd.Username,
		Password:       pw,
		DialTimeout:    time.Duration(a.cfg.Etcd.DialTimeout),
		Prefix:         a.cfg.Prefix(),
		Name:           a.cfg.Name,
		TTL:            a.dyn.TTLDuration(),
		RequestTimeout: a.dyn.RetryTimeoutDuration(),
		Logger:         a.log,
	}
}

// shutdown leaves the cluster cleanly: a leader releases its key only after
// PostgreSQL has stopped, so that no replica is promoted while it can still
// accept writes.
func (a *Agent) shutdown() {
	a.notifySystemd(a.notify.Stopping, "STOPPING=1")
	a.guard.disarm()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a.waitTask(ctx)
	wasLeader := a.keyOnMyLease
	if _, running := a.pg.Running(); running {
		a.log.Info("stopping PostgreSQL (fast) on shutdown")
		a.beforeStop(ctx)
		if err := a.pg.Stop(ctx, postgres.StopFast, 20*time.Second); err != nil {
			a.log.Error("stopping PostgreSQL", "err", err)
			return
		}
		a.pgStopped()
	}
	if a.fence != nil {
		a.fence.stop()
	}
	if a.watchdog.dev != nil {
		_ = a.watchdog.dev.Close() // magic close: PostgreSQL is already stopped
		a.watchdog.dev = nil
	}
	if wasLeader {
		if err := a.dcs.ReleaseLeader(ctx); err != nil {
			a.log.Error("releasing leader key", "err", err)
		} else {
			a.log.Info("released leader key", "action", "release_leader", "reason", "agent shutdown")
		}
	}
	if err := a.dcs.DeleteMember(ctx); err != nil {
		a.log.Warn("deleting member key", "err", err)
	}
}

// readDynamicConfig adopts the cluster's dynamic configuration before the
// first lease is granted, so that the lease has the cluster's ttl rather
// than the member file's bootstrap.dcs.ttl. Without an answer the first
// loop reads it and moves the lease (followTTL).
func (a *Agent) readDynamicConfig(ctx context.Context, client *dcs.Client) {
	view, err := a.loadView(ctx)
	if err != nil {
		return
	}
	a.adoptConfig(ctx, view)
}

// duplicateName reports whether another live agent uses this member's name:
// its member key is on a lease that is not ours *and* its REST API answers.
// A key left by this member's previous, crashed run (same name, dead API)
// is not a duplicate; it expires with its lease.
func (a *Agent) duplicateName(ctx context.Context, client *dcs.Client) bool {
	taken, err := client.MemberNameTaken(ctx)
	if err != nil || !taken {
		return false
	}
	view, err := client.Load(ctx)
	if err != nil {
		return false
	}
	m := view.Member(a.cfg.Name)
	if m == nil {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, a.dyn.PeerTimeoutDuration())
	defer cancel()
	return probe(pctx, a.peerClient(), m).Reachable
}

// apiServer builds the REST server with its access control and operator.
func (a *Agent) apiServer(client *dcs.Client) (*api.Server, error) {
	rc := a.cfg.RestAPI
	srv := api.New(a.pub, client, a.log)
	srv.Store = client
	srv.Operator = operator{a}
	srv.Metrics = a.metrics.Handler()
	srv.Failsafe = failsafeAcker{a}
	srv.Positions = positions{a}
	tlsCfg, err := rc.ServerTLS()
	if err != nil {
		return nil, fmt.Errorf("restapi TLS: %w", err)
	}
	srv.TLS = tlsCfg
	if srv.Access, err = restAccess(rc); err != nil {
		return nil, err
	}
	a.api = srv
	return srv, nil
}

// SetConfigPath tells the agent where its configuration file is, so that
// a reload can reread it.
func (a *Agent) SetConfigPath(path string) { a.configPath = path }

// failsafeAcker answers POST /failsafe for the agent.
type failsafeAcker struct{ a *Agent }

// AcknowledgeFailsafe records that leader asked to be acknowledged during a
// DCS outage. A member that itself leads refuses.
func (f failsafeAcker) AcknowledgeFailsafe(leader string) error {
	if snap := f.a.pub.Snapshot(); snap.HoldsLeaderKey && leader != f.a.cfg.Name {
		return fmt.Errorf("%s holds the leader key itself", f.a.cfg.Name)
	}
	f.a.failsafe.acknowledge(leader)
	return nil
}
