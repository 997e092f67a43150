// Package bench compares Regent with Patroni on one machine: it runs a
// three-member cluster of each system on 127.0.0.1, one after the other,
// with the same PostgreSQL parameters and timings, injects faults (host
// loss, postmaster crash, switchover), measures how long writes are
// unavailable and whether acknowledged writes are lost, measures the idle
// footprint and the health-check API, and writes the results as Markdown.
// cmd/regent-bench is its command line.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/postgres"
)

// PGBinDir is the PostgreSQL server both systems run: the installed one
// postgres.FindBinDir finds, "" when there is none (CheckPrerequisites
// then says what to install).
func PGBinDir() string {
	d, _ := pgBinDir()
	return d
}

var pgBinDir = sync.OnceValues(func() (string, error) {
	d, _, err := postgres.FindBinDir()
	return d, err
})

// Profile is a timing profile. TTL 0 means each system's own defaults.
type Profile struct {
	Name                        string
	TTL, LoopWait, RetryTimeout int
}

// Profiles are the known profiles: "defaults" (each system's defaults)
// and "tuned" (equal aggressive timings for both).
var Profiles = map[string]Profile{
	"defaults": {Name: "defaults"},
	"tuned":    {Name: "tuned", TTL: 10, LoopWait: 2, RetryTimeout: 3},
}

// PGParameters are the PostgreSQL parameters both systems run with: the
// ones Regent sets itself, given explicitly to both so that neither
// system's own choices make a difference.
var PGParameters = map[string]string{
	"max_connections":       "100",
	"shared_buffers":        "128MB",
	"wal_level":             "replica",
	"hot_standby":           "on",
	"max_wal_senders":       "10",
	"max_replication_slots": "10",
	"wal_log_hints":         "on",
	"wal_keep_size":         "128MB",
	"password_encryption":   "scram-sha-256",
}

// timings describes the ttl / loop_wait / retry_timeout a system runs
// with under a profile.
func timings(system string, p Profile) string {
	if p.TTL > 0 {
		return fmt.Sprintf("ttl %d / loop_wait %d / retry_timeout %d", p.TTL, p.LoopWait, p.RetryTimeout)
	}
	if system == "patroni" {
		return "ttl 30 / loop_wait 10 / retry_timeout 10 (Patroni's defaults)"
	}
	return "ttl 5 / loop_wait 1 / retry_timeout 1 (Regent's defaults)"
}

// loopWait is the loop interval a system runs with under a profile.
func loopWait(system string, p Profile) time.Duration {
	switch {
	case p.TTL > 0:
		return time.Duration(p.LoopWait) * time.Second
	case system == "patroni":
		return 10 * time.Second
	default:
		return time.Duration(cluster.DefaultDynamicConfig().LoopWait) * time.Second
	}
}

// Options configure a run.
type Options struct {
	Profiles []string
	Systems  []string
	// Modes are the replication modes to run each system in: "async" and
	// "sync" (synchronous_mode on, synchronous_node_count 1, not strict,
	// for both systems). Empty means both.
	Modes []string `json:",omitempty"`
	// Reps is the number of repetitions of host loss and switchover;
	// CrashReps of the postmaster crash; SyncReps of each scenario in
	// synchronous mode.
	Reps, CrashReps, SyncReps int
	// Smoke is the short mode for CI: durations shortened, no sync mode.
	Smoke bool
	// RegentBinary is the regent executable under test.
	RegentBinary string
	// WorkDir holds every cluster's files; removed at the end unless Keep.
	WorkDir string
	Keep    bool
	// EmbeddedEtcd uses internal/etcdserver instead of EtcdBinary.
	EmbeddedEtcd bool
	EtcdBinary   string

	IdleWindow      time.Duration // footprint window
	APIDuration     time.Duration // GET /primary load test
	APIClients      int
	FailoverTimeout time.Duration // bound of one fault's recovery
	RecoverTimeout  time.Duration // bound of a cluster becoming healthy
	StartTimeout    time.Duration // bound of a new cluster becoming healthy

	// Log receives progress lines.
	Log io.Writer `json:"-"`
}

// Defaults fills unset options.
func (o *Options) Defaults() {
	if len(o.Profiles) == 0 {
		o.Profiles = []string{"defaults", "tuned"}
	}
	if len(o.Systems) == 0 {
		o.Systems = []string{"regent", "patroni"}
	}
	if len(o.Modes) == 0 {
		o.Modes = []string{"async", "sync"}
		if o.Smoke {
			o.Modes = []string{"async"}
		}
	}
	if o.Reps <= 0 {
		o.Reps = 3
	}
	if o.CrashReps <= 0 {
		o.CrashReps = o.Reps
	}
	if o.SyncReps <= 0 {
		o.SyncReps = o.Reps
	}
	if o.EtcdBinary == "" {
		o.EtcdBinary = DebianEtcd
	}
	if o.IdleWindow == 0 {
		o.IdleWindow = 60 * time.Second
	}
	if o.APIDuration == 0 {
		o.APIDuration = 10 * time.Second
	}
	if o.APIClients == 0 {
		o.APIClients = 8
	}
	if o.FailoverTimeout == 0 {
		o.FailoverTimeout = 120 * time.Second
	}
	if o.RecoverTimeout == 0 {
		o.RecoverTimeout = 240 * time.Second
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 300 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// ClusterResult is everything measured on one cluster.
type ClusterResult struct {
	System  string `json:"system"`
	Profile string `json:"profile"`
	Sync    bool   `json:"sync"`
	Timings string `json:"timings"`
	// Scenarios: "hostloss", "crash", "switchover".
	Scenarios map[string][]Sample `json:"scenarios"`
	Footprint *Footprint          `json:"footprint,omitempty"`
	API       *APIResult          `json:"api,omitempty"`
	Err       string              `json:"error,omitempty"`
	Elapsed   time.Duration       `json:"elapsed"`
	// Part is 0 for a cluster of the main run, n for one measured in the
	// separate run Report.Parts[n-1] (see Merge).
	Part int `json:"part,omitempty"`
}

// Report is a whole run.
type Report struct {
	Options  Options
	Env      Environment
	Started  time.Time
	Elapsed  time.Duration
	Clusters []*ClusterResult
	// Parts are separate runs merged into this report (see Merge).
	Parts []Part `json:",omitempty"`
}

// Find returns the result of system under profile (sync or not).
func (r *Report) Find(system, profile string, sync bool) *ClusterResult {
	for _, c := range r.Clusters {
		if c.System == system && c.Profile == profile && c.Sync == sync {
			return c
		}
	}
	return nil
}

// Run runs every selected profile and system and returns the report. It
// returns an error only when the run could not take place at all; failed
// measurements are recorded in the report.
func Run(ctx context.Context, o Options, env Environment) (*Report, error) {
	o.Defaults()
	for _, p := range o.Profiles {
		if _, ok := Profiles[p]; !ok {
			return nil, fmt.Errorf("unknown profile %q (known: defaults, tuned)", p)
		}
	}
	for _, s := range o.Systems {
		if s != "regent" && s != "patroni" {
			return nil, fmt.Errorf("unknown system %q (known: regent, patroni)", s)
		}
	}
	for _, m := range o.Modes {
		if m != "async" && m != "sync" {
			return nil, fmt.Errorf("unknown mode %q (known: async, sync)", m)
		}
	}
	if slices.Contains(o.Systems, "regent") && o.RegentBinary == "" {
		return nil, fmt.Errorf("no regent binary")
	}
	if o.WorkDir == "" {
		return nil, fmt.Errorf("no work directory")
	}
	defer KillLeftovers()
	rep := &Report{Options: o, Env: env, Started: time.Now()}
	var ids atomic.Int64
	for _, pname := range o.Profiles {
		p := Profiles[pname]
		for _, sys := range o.Systems {
			for _, mode := range o.Modes {
				sync := mode == "sync"
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				cr := runCluster(ctx, &o, p, sys, sync, &ids)
				rep.Clusters = append(rep.Clusters, cr)
			}
		}
	}
	rep.Elapsed = time.Since(rep.Started)
	return rep, ctx.Err()
}

func logf(o *Options, format string, args ...any) {
	fmt.Fprintf(o.Log, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// runCluster starts an etcd and a cluster of sys, runs every measurement
// on it, and stops everything it started.
func runCluster(ctx context.Context, o *Options, p Profile, sys string, sync bool, ids *atomic.Int64) (cr *ClusterResult) {
	start := time.Now()
	cr = &ClusterResult{System: sys, Profile: p.Name, Sync: sync, Timings: timings(sys, p), Scenarios: map[string][]Sample{}}
	mode := "async"
	if sync {
		mode = "sync"
	}
	tag := fmt.Sprintf("[%s %s %s]", p.Name, sys, mode)
	lg := func(format string, args ...any) { logf(o, tag+" "+format, args...) }
	defer func() {
		cr.Elapsed = time.Since(start)
		if cr.Err != "" {
			lg("ERROR: %s", cr.Err)
		}
		lg("done in %s", cr.Elapsed.Round(time.Second))
	}()

	dir := filepath.Join(o.WorkDir, fmt.Sprintf("%s-%s-%s", p.Name, sys, mode))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		cr.Err = err.Error()
		return cr
	}
	_ = os.Chmod(dir, 0o755)
	lg("starting etcd")
	etcd, err := startEtcd(ctx, o, filepath.Join(dir, "etcd"))
	if err != nil {
		cr.Err = "etcd: " + err.Error()
		return cr
	}
	defer etcd.Stop()

	var s System
	switch sys {
	case "regent":
		s, err = newRegent(filepath.Join(dir, "cluster"), o.RegentBinary, etcd.Endpoints(), p, sync, PGParameters)
	case "patroni":
		s, err = newPatroni(filepath.Join(dir, "cluster"), etcd.Endpoints(), p, sync, PGParameters)
	}
	if err != nil {
		cr.Err = err.Error()
		return cr
	}
	defer func() {
		lg("stopping the cluster")
		s.Stop()
		if cr.Err != "" || o.Keep {
			for _, m := range s.Members() {
				lg("log of %s: %s", m.Name, s.LogPath(m.Name))
			}
		}
	}()
	lg("starting the cluster (%s)", cr.Timings)
	if err := s.Start(ctx); err != nil {
		cr.Err = err.Error()
		return cr
	}
	leader, err := waitHealthy(ctx, s, sync, o.StartTimeout)
	if err != nil {
		cr.Err = "start: " + err.Error()
		return cr
	}
	lg("healthy after %s, leader %s", time.Since(start).Round(100*time.Millisecond), leader)
	if err := createTable(ctx, s, leader); err != nil {
		cr.Err = "creating the table: " + err.Error()
		return cr
	}
	run := &scenarioRun{o: o, s: s, sync: sync, clk: clock{t0: time.Now()}, ids: ids, logf: lg, leader: leader, loopWait: loopWait(sys, p)}

	if !sync {
		// Let the start settle (checkpoints, replication slots), then
		// measure the idle footprint before any client traffic.
		_ = sleepCtx(ctx, settle(o))
		lg("idle footprint over %s", o.IdleWindow)
		fp, err := run.footprint(ctx, etcd.Endpoints()[0])
		if err != nil {
			lg("footprint: %v", err)
			cr.Err = joinErr(cr.Err, "footprint: "+err.Error())
		} else {
			cr.Footprint = fp
		}
		lg("GET /primary load: %d clients for %s", o.APIClients, o.APIDuration)
		ar := loadPrimary(ctx, s.APIURL(leader)+"/primary", o.APIClients, o.APIDuration)
		cr.API = &ar
		lg("GET /primary: %.0f req/s, p99 %s, %d errors", ar.RPS, ar.P99, ar.Errors)
	}

	reps, crashReps := o.Reps, o.CrashReps
	if sync {
		reps, crashReps = o.SyncReps, o.SyncReps
	}
	plan := []struct {
		name string
		n    int
		f    func(context.Context) Sample
	}{
		{"hostloss", reps, run.hostLoss},
		{"crash", crashReps, run.postmasterCrash},
		{"switchover", reps, run.switchover},
	}
	for _, step := range plan {
		for i := 0; i < step.n; i++ {
			if ctx.Err() != nil {
				cr.Err = joinErr(cr.Err, ctx.Err().Error())
				return cr
			}
			lg("%s %d/%d", step.name, i+1, step.n)
			smp := step.f(ctx)
			if smp.Err != "" {
				lg("%s %d: %s", step.name, i+1, smp.Err)
			}
			lg("%s %d: %d acknowledged writes, %d lost", step.name, i+1, smp.Acked, smp.Lost)
			cr.Scenarios[step.name] = append(cr.Scenarios[step.name], smp)
			if smp.Err != "" {
				// Only go on with a healthy cluster.
				if _, err := waitHealthy(ctx, s, sync, o.RecoverTimeout); err != nil {
					cr.Err = joinErr(cr.Err, "cluster did not recover: "+err.Error())
					return cr
				}
			}
		}
	}
	return cr
}

func settle(o *Options) time.Duration {
	if o.Smoke {
		return 2 * time.Second
	}
	return 10 * time.Second
}
