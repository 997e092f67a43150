// Package localcluster runs a Regent cluster on one machine: each member is
// its own `regent run` process with its own configuration file and data
// directory, all pointed at one etcd. `regent demo` and the integration
// tests use it, so the demo exercises exactly what the tests do.
package localcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/dcs"
)

// MemberSpec names one member and its ports on 127.0.0.1.
type MemberSpec struct {
	Name    string
	PGPort  int
	APIPort int
	// Tags are written to the member's tags section (nofailover, ...).
	Tags map[string]any
	// PostgreSQL holds extra keys of the member's postgresql section
	// (callbacks, pre_promote, ...).
	PostgreSQL map[string]any
	// Etcd overrides Spec.Etcd for this member: the fault-injection
	// suite gives every member its own proxies in front of etcd.
	Etcd []string
	// PGConnect and APIConnect, when set, are the addresses published to
	// the other members (connect_address) instead of the listen ports.
	PGConnect  string
	APIConnect string
}

// Spec describes a local cluster.
type Spec struct {
	// Dir holds one sub-directory per member and the shared secrets.
	Dir string
	// Binary is the regent executable started for each member.
	Binary string
	Scope  string
	Etcd   []string
	// BinDir is the PostgreSQL binary directory ("" = default).
	BinDir  string
	Members []MemberSpec
	// DCS overrides the bootstrap dynamic configuration when non-nil.
	DCS *cluster.DynamicConfig
	// LogLevel of the agents (default info).
	LogLevel string
}

// Cluster is a running local cluster.
type Cluster struct {
	Spec  Spec
	mu    sync.Mutex
	procs map[string]*proc
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// New prepares the directory: secrets and one member.yaml per member. An
// existing member.yaml is kept, so a second run restarts the same cluster.
func New(spec Spec) (*Cluster, error) {
	if spec.Scope == "" {
		spec.Scope = "demo"
	}
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return nil, err
	}
	// PostgreSQL runs as an unprivileged user that must reach the data
	// directories below Dir.
	if err := os.Chmod(spec.Dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{Spec: spec, procs: map[string]*proc{}}
	secrets := filepath.Join(spec.Dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return nil, err
	}
	for _, name := range []string{"superuser", "replication", "restapi"} {
		if err := ensureSecret(filepath.Join(secrets, name)); err != nil {
			return nil, err
		}
	}
	for _, m := range spec.Members {
		if err := c.writeConfig(m); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func ensureSecret(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600)
}

// MemberDir is the directory of one member.
func (c *Cluster) MemberDir(name string) string { return filepath.Join(c.Spec.Dir, name) }

// ConfigPath is the member's configuration file.
func (c *Cluster) ConfigPath(name string) string {
	return filepath.Join(c.MemberDir(name), "member.yaml")
}

// DataDir is the member's PostgreSQL data directory.
func (c *Cluster) DataDir(name string) string { return filepath.Join(c.MemberDir(name), "data") }

// LogPath is the member agent's log file.
func (c *Cluster) LogPath(name string) string { return filepath.Join(c.MemberDir(name), "regent.log") }

// Password returns a generated password ("superuser", "replication" or
// "restapi"; the REST API user is "regent").
func (c *Cluster) Password(role string) string {
	b, _ := os.ReadFile(filepath.Join(c.Spec.Dir, "secrets", role))
	return strings.TrimSpace(string(b))
}

// Member returns the spec of the named member.
func (c *Cluster) Member(name string) (MemberSpec, bool) {
	for _, m := range c.Spec.Members {
		if m.Name == name {
			return m, true
		}
	}
	return MemberSpec{}, false
}

func (c *Cluster) writeConfig(m MemberSpec) error {
	dir := c.MemberDir(m.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	path := c.ConfigPath(m.Name)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	secrets := filepath.Join(c.Spec.Dir, "secrets")
	etcd := c.Spec.Etcd
	if len(m.Etcd) > 0 {
		etcd = m.Etcd
	}
	doc := map[string]any{
		"scope": c.Spec.Scope,
		"name":  m.Name,
		"etcd":  map[string]any{"endpoints": etcd},
		"restapi": map[string]any{
			"listen": "127.0.0.1:" + strconv.Itoa(m.APIPort),
			// Mutating endpoints need these credentials; health checks
			// stay open.
			"authentication": map[string]any{"username": "regent", "password": map[string]string{"file": filepath.Join(secrets, "restapi")}},
		},
		"postgresql": map[string]any{
			"listen":   "127.0.0.1:" + strconv.Itoa(m.PGPort),
			"data_dir": c.DataDir(m.Name),
			"authentication": map[string]any{
				"superuser":   map[string]any{"username": "postgres", "password": map[string]string{"file": filepath.Join(secrets, "superuser")}},
				"replication": map[string]any{"username": "replicator", "password": map[string]string{"file": filepath.Join(secrets, "replication")}},
			},
		},
		"log": map[string]any{"level": c.logLevel()},
		// Demo and test members are killed on purpose: never let that
		// reset the machine through a kernel watchdog. The fence process
		// still protects them.
		"watchdog": map[string]any{"mode": "off"},
	}
	if len(m.Tags) > 0 {
		doc["tags"] = m.Tags
	}
	for k, v := range m.PostgreSQL {
		doc["postgresql"].(map[string]any)[k] = v
	}
	if m.PGConnect != "" {
		doc["postgresql"].(map[string]any)["connect_address"] = m.PGConnect
	}
	if m.APIConnect != "" {
		doc["restapi"].(map[string]any)["connect_address"] = m.APIConnect
	}
	if c.Spec.BinDir != "" {
		doc["postgresql"].(map[string]any)["bin_dir"] = c.Spec.BinDir
	}
	if c.Spec.DCS != nil {
		doc["bootstrap"] = map[string]any{"dcs": c.Spec.DCS}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	header := "# Regent member configuration written by the local cluster launcher.\n"
	return os.WriteFile(path, append([]byte(header), out...), 0o600)
}

func (c *Cluster) logLevel() string {
	if c.Spec.LogLevel == "" {
		return "info"
	}
	return c.Spec.LogLevel
}

// Start starts the member's agent process; its output goes to LogPath.
func (c *Cluster) Start(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[name]; p != nil && !p.exited() {
		return fmt.Errorf("member %s is already running (pid %d)", name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(c.LogPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.Spec.Binary, "run", "-c", c.ConfigPath(name))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C in the terminal reaches the launcher,
	// which stops members in order, not every process at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting member %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	c.procs[name] = p
	return nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// AgentPID returns the agent's PID, or 0 when it is not running.
func (c *Cluster) AgentPID(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[name]; p != nil && !p.exited() {
		return p.cmd.Process.Pid
	}
	return 0
}

// Exited returns a channel closed when the member's agent process exits,
// or nil if it was never started.
func (c *Cluster) Exited(name string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[name]; p != nil {
		return p.done
	}
	return nil
}

// ExitError returns the agent's exit error after it exited.
func (c *Cluster) ExitError(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[name]; p != nil && p.exited() {
		return p.err
	}
	return nil
}

// PostmasterPID reads the member's postmaster.pid; 0 when absent.
func (c *Cluster) PostmasterPID(name string) int {
	b, err := os.ReadFile(filepath.Join(c.DataDir(name), "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

// Kill sends SIGKILL to the member's agent (not to PostgreSQL).
func (c *Cluster) Kill(name string) error {
	pid := c.AgentPID(name)
	if pid == 0 {
		return fmt.Errorf("member %s is not running", name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	<-c.Exited(name)
	return nil
}

// KillPostmaster sends SIGKILL to the member's postmaster only.
func (c *Cluster) KillPostmaster(name string) error {
	pid := c.PostmasterPID(name)
	if pid == 0 {
		return fmt.Errorf("member %s has no postmaster.pid", name)
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}

// Stop asks the member's agent to shut down (SIGTERM) and waits up to
// timeout, then kills it.
func (c *Cluster) Stop(name string, timeout time.Duration) error {
	pid := c.AgentPID(name)
	if pid == 0 {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-c.Exited(name):
		return nil
	case <-time.After(timeout):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-c.Exited(name)
		return fmt.Errorf("member %s did not stop within %s; killed", name, timeout)
	}
}

// StopAll stops every member: replicas first, then the leader, so that the
// leader's shutdown does not trigger a failover.
func (c *Cluster) StopAll(ctx context.Context, timeout time.Duration) error {
	leader := ""
	if view, err := c.View(ctx); err == nil {
		leader = view.LeaderName()
	}
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, m := range c.Spec.Members {
		if m.Name == leader {
			continue
		}
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			if err := c.Stop(name, timeout); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}(m.Name)
	}
	wg.Wait()
	if leader != "" {
		errs = append(errs, c.Stop(leader, timeout))
	}
	return errors.Join(errs...)
}

// View reads the cluster from etcd.
func (c *Cluster) View(ctx context.Context) (*cluster.Cluster, error) {
	client, err := dcs.Open(ctx, dcs.Options{
		Endpoints:      c.Spec.Etcd,
		DialTimeout:    2 * time.Second,
		Prefix:         "/service/" + c.Spec.Scope + "/",
		RequestTimeout: 2 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	defer client.Close()
	return client.Load(ctx)
}

// Healthy reports whether the view shows one running leader and every
// other listed member streaming from it.
func Healthy(view *cluster.Cluster, members int) bool {
	l := view.LeaderMember()
	if l == nil || l.State != cluster.StateRunning || l.Role != cluster.RolePrimary {
		return false
	}
	streaming := 0
	for _, m := range view.Members {
		if m.Name != l.Name && m.ReplicationState == cluster.ReplicationStreaming && m.Timeline == l.Timeline {
			streaming++
		}
	}
	return streaming == members-1
}

// WaitHealthy polls until Healthy or ctx ends.
func (c *Cluster) WaitHealthy(ctx context.Context) (*cluster.Cluster, error) {
	return c.WaitFor(ctx, func(v *cluster.Cluster) bool { return Healthy(v, len(c.Spec.Members)) })
}

// WaitFor polls the view every 200 ms until cond holds or ctx ends.
func (c *Cluster) WaitFor(ctx context.Context, cond func(*cluster.Cluster) bool) (*cluster.Cluster, error) {
	var last *cluster.Cluster
	var lastErr error
	for {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		view, err := c.View(rctx)
		cancel()
		if err == nil {
			last = view
			if cond(view) {
				return view, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("condition not reached: %w (last DCS error: %v)", ctx.Err(), lastErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Forget drops the record of an exited member so that Exited reports a new
// process only after the next Start.
func (c *Cluster) Forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[name]; p != nil && p.exited() {
		delete(c.procs, name)
	}
}

// APIURL is the base URL of a member's REST API.
func (c *Cluster) APIURL(name string) string {
	m, _ := c.Member(name)
	return "http://127.0.0.1:" + strconv.Itoa(m.APIPort)
}

// Env is the environment for running the regent CLI against this cluster,
// as demo.env sets it.
func (c *Cluster) Env() []string {
	return []string{
		"REGENT_ETCD=" + strings.Join(c.Spec.Etcd, ","),
		"REGENT_SCOPE=" + c.Spec.Scope,
		"REGENT_API_USERNAME=regent",
		"REGENT_API_PASSWORD=" + c.Password("restapi"),
	}
}
