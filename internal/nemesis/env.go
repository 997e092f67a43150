package nemesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/localcluster"
	"github.com/regent-ha/regent/internal/procfs"
	"github.com/regent-ha/regent/internal/testport"
)

// Mode is the replication mode a scenario runs in.
type Mode string

const (
	Async Mode = "async"
	Sync  Mode = "sync"
	// Quorum is synchronous_mode: quorum (ANY k).
	Quorum Mode = "quorum"
)

// synchronous reports whether acknowledged commits must survive.
func (m Mode) synchronous() bool { return m == Sync || m == Quorum }

// Options configure an environment.
type Options struct {
	// Dir holds everything: etcd data, member directories, logs.
	Dir string
	// Regent and EtcdNode are the executables (see Build).
	Regent, EtcdNode string
	Mode             Mode
	// Failsafe turns failsafe_mode on.
	Failsafe bool
	// Members and EtcdMembers default to 3.
	Members, EtcdMembers int
	// Log receives progress lines (nil: discarded).
	Log io.Writer
}

// Env is a running cluster under test: etcd members as processes, Regent
// members as processes, and a proxy on every link that a scenario cuts.
//
// Links: member m reaches etcd member e through etcdLinks[m][e]; the other
// members reach m's PostgreSQL (replication, pg_rewind) through pgLinks[m]
// and its REST API (peer probes, failsafe) through apiLinks[m], because m
// publishes the proxies as its connect addresses. The workload and the
// prober reach every member directly: they stand outside the fault domain.
type Env struct {
	opts    Options
	Cluster *localcluster.Cluster
	Members []string

	etcd      []*etcdMember
	etcdLinks map[string][]*Proxy
	pgLinks   map[string]*Proxy
	apiLinks  map[string]*Proxy
	mounts    []string
	freezable int

	mu     sync.Mutex
	paused map[int]bool    // process groups or PIDs stopped by the scenario
	frozen map[string]bool // filesystems frozen by the scenario
}

type etcdMember struct {
	name, dir, clientURL, peerURL string
	initial                       string
	bin, log                      string
	mu                            sync.Mutex
	cmd                           *exec.Cmd
	done                          chan struct{}
}

// Build compiles regent and the etcd member program into dir.
func Build(dir string) (regent, etcdNode string, err error) {
	regent, etcdNode = filepath.Join(dir, "regent"), filepath.Join(dir, "etcdnode")
	for bin, pkg := range map[string]string{
		regent:   "github.com/regent-ha/regent/cmd/regent",
		etcdNode: "github.com/regent-ha/regent/internal/nemesis/etcdnode",
	} {
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			return "", "", fmt.Errorf("building %s: %v\n%s", pkg, err, out)
		}
	}
	return regent, etcdNode, nil
}

func (e *Env) logf(format string, args ...any) {
	if e.opts.Log != nil {
		fmt.Fprintf(e.opts.Log, time.Now().Format("15:04:05.000")+" "+format+"\n", args...)
	}
}

// Start builds the environment and waits until the cluster is healthy.
func Start(ctx context.Context, opts Options) (*Env, error) {
	if opts.Members == 0 {
		opts.Members = 3
	}
	if opts.EtcdMembers == 0 {
		opts.EtcdMembers = 3
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	for d := opts.Dir; d != "/" && d != "."; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755) // the postgres user must reach the data directories
		if d == os.TempDir() {
			break
		}
	}
	e := &Env{opts: opts, etcdLinks: map[string][]*Proxy{}, pgLinks: map[string]*Proxy{}, apiLinks: map[string]*Proxy{}, paused: map[int]bool{}, frozen: map[string]bool{}}
	if err := e.startEtcd(); err != nil {
		e.Close()
		return nil, err
	}
	spec := localcluster.Spec{
		Dir:    filepath.Join(opts.Dir, "members"),
		Binary: opts.Regent,
		Scope:  "nemesis",
		Etcd:   e.EtcdEndpoints(),
		DCS:    dynamicConfig(opts),
	}
	for i := 1; i <= opts.Members; i++ {
		name := fmt.Sprintf("m%d", i)
		ms := localcluster.MemberSpec{Name: name, PGPort: freePort(), APIPort: freePort()}
		for _, em := range e.etcd {
			p, err := NewProxy(strings.TrimPrefix(em.clientURL, "http://"))
			if err != nil {
				e.Close()
				return nil, err
			}
			e.etcdLinks[name] = append(e.etcdLinks[name], p)
			ms.Etcd = append(ms.Etcd, "http://"+p.Addr())
		}
		pg, err := NewProxy("127.0.0.1:" + strconv.Itoa(ms.PGPort))
		if err != nil {
			e.Close()
			return nil, err
		}
		api, err := NewProxy("127.0.0.1:" + strconv.Itoa(ms.APIPort))
		if err != nil {
			e.Close()
			return nil, err
		}
		e.pgLinks[name], e.apiLinks[name] = pg, api
		ms.PGConnect, ms.APIConnect = pg.Addr(), api.Addr()
		spec.Members = append(spec.Members, ms)
		e.Members = append(e.Members, name)
		e.mountDataFS(name, filepath.Join(spec.Dir, name, "data"))
	}
	c, err := localcluster.New(spec)
	if err != nil {
		e.Close()
		return nil, err
	}
	e.Cluster = c
	for _, m := range e.Members {
		if err := c.Start(m); err != nil {
			e.Close()
			return nil, err
		}
	}
	if err := e.WaitHealthy(ctx); err != nil {
		e.Close()
		return nil, fmt.Errorf("cluster did not become healthy: %w", err)
	}
	if err := e.createTable(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// dynamicConfig is Regent's default dynamic configuration with the mode
// under test. wal_level logical lets scenario 24 run a logical walsender.
func dynamicConfig(opts Options) *cluster.DynamicConfig {
	d := cluster.DefaultDynamicConfig()
	switch opts.Mode {
	case Sync:
		d.SynchronousMode = cluster.SyncOn
	case Quorum:
		d.SynchronousMode = cluster.SyncQuorum
	}
	d.FailsafeMode = opts.Failsafe
	d.PostgreSQL.Parameters = map[string]string{"wal_level": "logical", "max_wal_size": "128MB"}
	return &d
}

// mountDataFS puts a member's data directory on a filesystem of its own
// so that scenarios can fill it (17) or freeze it (18): an ext4 image on a
// loop device when the machine allows it (fsfreeze needs a real
// filesystem), else a tmpfs (no freezing), else nothing (both scenarios
// are skipped).
func (e *Env) mountDataFS(name, dir string) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	// PostgreSQL runs as the postgres user when the suite runs as root.
	uid, gid := os.Getuid(), os.Getgid()
	if u, err := user.Lookup("postgres"); err == nil && uid == 0 {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	defer func() {
		_ = os.Chown(dir, uid, gid)
		_ = os.Chmod(dir, 0o700)
	}()
	img := filepath.Join(e.opts.Dir, "disks", name+".img")
	err := e.mountLoopExt4(img, dir)
	if err == nil {
		e.mounts = append(e.mounts, dir)
		e.freezable++
		// initdb wants an empty directory.
		_ = os.RemoveAll(filepath.Join(dir, "lost+found"))
		return
	}
	e.logf("no loop-device ext4 for %s (%v); trying tmpfs: the frozen-disk scenario is unavailable", dir, err)
	opts := fmt.Sprintf("size=1g,mode=0700,uid=%d,gid=%d", uid, gid)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		e.logf("no tmpfs for %s (%v): disk-full scenario unavailable", dir, err)
		return
	}
	e.mounts = append(e.mounts, dir)
}

func (e *Env) mountLoopExt4(img, dir string) error {
	if err := os.MkdirAll(filepath.Dir(img), 0o755); err != nil {
		return err
	}
	f, err := os.Create(img)
	if err != nil {
		return err
	}
	err = f.Truncate(1 << 30)
	f.Close()
	if err != nil {
		return err
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("mount -o loop: %v: %s", err, out)
	}
	return nil
}

// HasOwnFS reports whether every data directory is on its own filesystem.
func (e *Env) HasOwnFS() bool { return len(e.mounts) == len(e.Members) }

// CanFreeze reports whether every data directory can be frozen.
func (e *Env) CanFreeze() bool { return e.freezable == len(e.Members) }

// FreezeDisk blocks every write to the member's data directory
// (fsfreeze), as a stalled disk or SAN would.
func (e *Env) FreezeDisk(m string) error {
	dir := e.Cluster.DataDir(m)
	e.logf("fsfreeze %s", dir)
	if out, err := exec.Command("fsfreeze", "-f", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("fsfreeze: %v: %s", err, out)
	}
	e.mu.Lock()
	e.frozen[dir] = true
	e.mu.Unlock()
	return nil
}

// ThawDisks undoes every FreezeDisk.
func (e *Env) ThawDisks() {
	e.mu.Lock()
	dirs := e.frozen
	e.frozen = map[string]bool{}
	e.mu.Unlock()
	for dir := range dirs {
		e.logf("fsfreeze -u %s", dir)
		_ = exec.Command("fsfreeze", "-u", dir).Run()
	}
}

// freePort returns a TCP port on 127.0.0.1 reserved for this process.
func freePort() int { return testport.MustGet() }

func (e *Env) startEtcd() error {
	var initial []string
	for i := 1; i <= e.opts.EtcdMembers; i++ {
		em := &etcdMember{
			name:      fmt.Sprintf("e%d", i),
			dir:       filepath.Join(e.opts.Dir, "etcd", fmt.Sprintf("e%d", i)),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", freePort()),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort()),
			bin:       e.opts.EtcdNode,
			log:       filepath.Join(e.opts.Dir, "etcd", fmt.Sprintf("e%d.log", i)),
		}
		initial = append(initial, em.name+"="+em.peerURL)
		e.etcd = append(e.etcd, em)
	}
	for _, em := range e.etcd {
		em.initial = strings.Join(initial, ",")
		if err := em.start(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.waitEtcd(ctx)
}

func (em *etcdMember) start() error {
	em.mu.Lock()
	defer em.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(em.log), 0o755); err != nil {
		return err
	}
	cmd := exec.Command(em.bin, "-name", em.name, "-dir", em.dir, "-client", em.clientURL, "-peer", em.peerURL,
		"-initial-cluster", em.initial, "-log", em.log)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting etcd member %s: %w", em.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	em.cmd, em.done = cmd, done
	return nil
}

func (em *etcdMember) running() bool {
	em.mu.Lock()
	defer em.mu.Unlock()
	if em.cmd == nil {
		return false
	}
	select {
	case <-em.done:
		return false
	default:
		return true
	}
}

func (em *etcdMember) pid() int {
	em.mu.Lock()
	defer em.mu.Unlock()
	if em.cmd == nil {
		return 0
	}
	return em.cmd.Process.Pid
}

// kill stops the member with SIGKILL and waits for it.
func (em *etcdMember) kill() {
	em.mu.Lock()
	cmd, done := em.cmd, em.done
	em.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// EtcdEndpoints are the client URLs of the etcd members (direct).
func (e *Env) EtcdEndpoints() []string {
	var out []string
	for _, em := range e.etcd {
		out = append(out, em.clientURL)
	}
	return out
}

// waitEtcd waits until every running etcd member answers a status request.
func (e *Env) waitEtcd(ctx context.Context) error {
	for {
		ok := true
		for _, em := range e.etcd {
			if !em.running() {
				continue
			}
			if _, err := etcdStatus(ctx, em.clientURL); err != nil {
				ok = false
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd not ready: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func etcdStatus(ctx context.Context, url string) (*clientv3.StatusResponse, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: time.Second, Logger: nopLogger()})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return c.Status(sctx, url)
}

// EtcdLeader returns the index of the etcd leader, or -1.
func (e *Env) EtcdLeader(ctx context.Context) int {
	for i, em := range e.etcd {
		if !em.running() {
			continue
		}
		st, err := etcdStatus(ctx, em.clientURL)
		if err == nil && st.Header != nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	return -1
}

// KillEtcd kills etcd member i; StartEtcd starts it again with its data.
func (e *Env) KillEtcd(i int) {
	e.logf("kill -9 etcd %s", e.etcd[i].name)
	e.etcd[i].kill()
}

// StartEtcd restarts a killed etcd member.
func (e *Env) StartEtcd(i int) error {
	if e.etcd[i].running() {
		return nil
	}
	e.logf("start etcd %s", e.etcd[i].name)
	return e.etcd[i].start()
}

// PauseEtcd SIGSTOPs etcd member i (CPU starvation, a stalled disk).
func (e *Env) PauseEtcd(i int) {
	e.logf("SIGSTOP etcd %s", e.etcd[i].name)
	e.stop(e.etcd[i].pid(), false)
}

// Leader returns the member holding the leader key ("" if none).
func (e *Env) Leader(ctx context.Context) string {
	v, err := e.view(ctx)
	if err != nil {
		return ""
	}
	return v.LeaderName()
}

func (e *Env) view(ctx context.Context) (*cluster.Cluster, error) {
	vctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return e.Cluster.View(vctx)
}

// View reads the cluster from etcd.
func (e *Env) View(ctx context.Context) (*cluster.Cluster, error) { return e.view(ctx) }

// WaitHealthy waits until one leader runs and every member streams from
// it, and in synchronous mode a synchronous standby is published.
func (e *Env) WaitHealthy(ctx context.Context) error {
	_, err := e.Cluster.WaitFor(ctx, func(v *cluster.Cluster) bool {
		if !localcluster.Healthy(v, len(e.Members)) {
			return false
		}
		switch e.opts.Mode {
		case Sync:
			return v.Sync != nil && v.Sync.Leader == v.LeaderName() && len(v.Sync.Members) > 0
		case Quorum:
			// Every replica listed: while the leader widens the set, the
			// key briefly lists one standby with quorum 1, a state in
			// which no member can be promoted automatically (see
			// docs/safety-results.md); runs start from the settled state.
			return v.Sync != nil && v.Sync.Leader == v.LeaderName() && len(v.Sync.Members) == len(e.Members)-1
		}
		return true
	})
	return err
}

// WaitStreaming waits until the leader's pg_stat_replication shows every
// other member streaming.
func (e *Env) WaitStreaming(ctx context.Context, leader string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	want := len(e.Members) - 1
	got := -1
	for time.Now().Before(deadline) {
		if conn, err := connect(ctx, e.DSN(leader), nil); err == nil {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err = conn.QueryRow(qctx, "SELECT count(DISTINCT application_name) FROM pg_stat_replication WHERE state = 'streaming' AND application_name = ANY($1)",
				e.Members).Scan(&got)
			cancel()
			closeQuietly(conn)
			if err == nil && got >= want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s streams to %d replicas after %s, want %d", leader, got, timeout, want)
}

// DSN is a superuser connection string to the member's PostgreSQL,
// direct (not through the proxy).
func (e *Env) DSN(member string) string {
	m, _ := e.Cluster.Member(member)
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=postgres sslmode=disable",
		m.PGPort, e.Cluster.Password("superuser"))
}

// Targets are the workload's view of the members.
func (e *Env) Targets() []Target {
	var out []Target
	for _, m := range e.Members {
		out = append(out, Target{Member: m, DSN: e.DSN(m), API: e.Cluster.APIURL(m)})
	}
	return out
}

func (e *Env) createTable(ctx context.Context) error {
	leader := e.Leader(ctx)
	if leader == "" {
		return errors.New("no leader to create the workload table on")
	}
	conn, err := connect(ctx, e.DSN(leader), nil)
	if err != nil {
		return err
	}
	defer closeQuietly(conn)
	_, err = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+table+" (id bigint PRIMARY KEY, member text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())")
	return err
}

// Exec runs one statement on a member (direct connection).
func (e *Env) Exec(ctx context.Context, member, sql string) error {
	conn, err := connect(ctx, e.DSN(member), nil)
	if err != nil {
		return err
	}
	defer closeQuietly(conn)
	_, err = conn.Exec(ctx, sql)
	return err
}

// --- faults on members ---

// KillAgent sends SIGKILL to the member's agent process only: its fence
// process and PostgreSQL keep running.
func (e *Env) KillAgent(m string) {
	pid := e.Cluster.AgentPID(m)
	e.logf("kill -9 agent of %s (pgid %d)", m, pid)
	if pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-e.Cluster.Exited(m)
	}
}

// KillPostmaster sends SIGKILL to the member's postmaster only.
func (e *Env) KillPostmaster(m string) {
	pid := e.postmaster(m)
	e.logf("kill -9 postmaster of %s (pid %d)", m, pid)
	if pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// KillHost kills the member's agent, fence process, postmaster and every
// PostgreSQL process at once, as a host crash would. Everything is stopped
// first, so that nothing forks or notices the others dying.
func (e *Env) KillHost(m string) {
	apid := e.Cluster.AgentPID(m)
	procs := e.freezeAll(m)
	e.logf("kill -9 host %s (agent group %d, %d PostgreSQL processes)", m, apid, len(procs))
	for _, pid := range procs {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		e.forget(pid, false)
	}
	if apid > 0 {
		_ = syscall.Kill(-apid, syscall.SIGKILL)
		e.cont(apid, true) // a killed group must not be remembered as stopped
		<-e.Cluster.Exited(m)
	}
}

// FreezeHost stops every process of the member (agent, fence process,
// PostgreSQL) with SIGSTOP, as a paused VM would be.
func (e *Env) FreezeHost(m string) {
	procs := e.freezeAll(m)
	e.logf("SIGSTOP host %s (agent group %d, %d PostgreSQL processes)", m, e.Cluster.AgentPID(m), len(procs))
}

// freezeAll stops the member's agent group, its postmaster and then the
// postmaster's children (stopped, the postmaster forks no new ones), and
// returns the PostgreSQL processes.
func (e *Env) freezeAll(m string) []int {
	if apid := e.Cluster.AgentPID(m); apid > 0 {
		e.stop(apid, true)
	}
	pm := e.postmaster(m)
	if pm == 0 {
		return nil
	}
	e.stop(pm, false)
	// Every PostgreSQL child calls setsid(), so the postmaster's process
	// group does not contain them: a signal to the group would miss the
	// backends.
	procs := append([]int{pm}, procfs.Children(pm)...)
	for _, pid := range procs[1:] {
		e.stop(pid, false)
	}
	return procs
}

// postmaster returns the PID of the member's running postmaster, checked
// against its command line (postmaster.pid may be stale or half written,
// and a PID may have been reused), or 0.
func (e *Env) postmaster(m string) int {
	pid := e.Cluster.PostmasterPID(m)
	if pid <= 0 || !procfs.Alive(pid) {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), e.Cluster.DataDir(m)) {
		return 0
	}
	return pid
}

// FreezeAgent stops the agent process only (not its fence process).
func (e *Env) FreezeAgent(m string) {
	pid := e.Cluster.AgentPID(m)
	e.logf("SIGSTOP agent of %s (pid %d)", m, pid)
	e.stop(pid, false)
}

// FreezePostmaster stops the postmaster process only (its backends run).
func (e *Env) FreezePostmaster(m string) {
	pid := e.postmaster(m)
	e.logf("SIGSTOP postmaster of %s (pid %d)", m, pid)
	e.stop(pid, false)
}

func (e *Env) stop(pid int, group bool) {
	if pid <= 0 {
		return
	}
	target := pid
	if group {
		target = -pid
	}
	if syscall.Kill(target, syscall.SIGSTOP) == nil {
		e.mu.Lock()
		e.paused[target] = true
		e.mu.Unlock()
	}
}

func (e *Env) cont(pid int, group bool) {
	target := pid
	if group {
		target = -pid
	}
	_ = syscall.Kill(target, syscall.SIGCONT)
	e.mu.Lock()
	delete(e.paused, target)
	e.mu.Unlock()
}

// forget drops a stopped process that was killed from the set ResumeAll
// continues (its PID may be reused).
func (e *Env) forget(pid int, group bool) {
	target := pid
	if group {
		target = -pid
	}
	e.mu.Lock()
	delete(e.paused, target)
	e.mu.Unlock()
}

// ResumeAll sends SIGCONT to everything the scenario stopped, at once.
func (e *Env) ResumeAll() {
	e.mu.Lock()
	targets := make([]int, 0, len(e.paused))
	for t := range e.paused {
		targets = append(targets, t)
	}
	e.paused = map[int]bool{}
	e.mu.Unlock()
	if len(targets) > 0 {
		e.logf("SIGCONT %v", targets)
	}
	for _, t := range targets {
		_ = syscall.Kill(t, syscall.SIGCONT)
	}
}

// --- partitions ---

// CutFromEtcd partitions the member from every etcd member.
func (e *Env) CutFromEtcd(m string) {
	e.logf("partition %s from etcd", m)
	for _, p := range e.etcdLinks[m] {
		p.Cut()
	}
}

// CutFromPeers cuts the links to the member's PostgreSQL and REST API
// (replication, pg_rewind, peer probes); etcd stays reachable. Links the
// member itself opens to its peers are not cut: as a primary it opens
// none unless failsafe_mode is on.
func (e *Env) CutFromPeers(m string) {
	e.logf("partition %s from its peers", m)
	e.pgLinks[m].Cut()
	e.apiLinks[m].Cut()
}

// CutReplication cuts only the links to the member's PostgreSQL.
func (e *Env) CutReplication(m string) {
	e.logf("cut replication links to %s", m)
	e.pgLinks[m].Cut()
}

// links returns every proxy of the environment.
func (e *Env) links() []*Proxy {
	var out []*Proxy
	for _, ps := range e.etcdLinks {
		out = append(out, ps...)
	}
	for _, p := range e.pgLinks {
		out = append(out, p)
	}
	for _, p := range e.apiLinks {
		out = append(out, p)
	}
	return out
}

// HealLinks restores every link.
func (e *Env) HealLinks() {
	for _, p := range e.links() {
		p.Heal()
	}
}

// HealEtcdLinks restores the member's links to etcd.
func (e *Env) HealEtcdLinks(m string) {
	for _, p := range e.etcdLinks[m] {
		p.Heal()
	}
}

// --- healing ---

// UndoFaults undoes every fault: thaws disks, restores links, resumes
// stopped processes, starts killed etcd members and agents. It waits for
// nothing and never acts as an operator: what the cluster does next is
// what the converged checker judges.
func (e *Env) UndoFaults() error {
	e.ThawDisks()
	e.HealLinks()
	e.ResumeAll()
	for i := range e.etcd {
		if err := e.StartEtcd(i); err != nil {
			return err
		}
	}
	for _, m := range e.Members {
		if err := e.StartAgent(m); err != nil {
			return err
		}
	}
	return nil
}

// Heal undoes every fault and waits for a healthy cluster (WaitHealthy).
func (e *Env) Heal(ctx context.Context) error {
	if err := e.UndoFaults(); err != nil {
		return err
	}
	return e.WaitHealthy(ctx)
}

// ReinitNeedsReinit acts as an operator: it asks every member whose
// GET /patroni state is "needs reinit" (a rejoin failed in a way retrying
// cannot fix and remove_data_directory_on_rewind_failure is off) to
// reinitialize (POST /reinitialize, as `regent reinit` does), and returns
// what it did. The runner calls it only after a run's verdict, so that
// the next run starts healthy; it never counts towards convergence.
func (e *Env) ReinitNeedsReinit(ctx context.Context) []string {
	var done []string
	client := &http.Client{Timeout: 5 * time.Second}
	for _, st := range e.ProbeMembers(ctx) {
		if st.State != cluster.StateNeedsReinit {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.Cluster.APIURL(st.Member)+"/reinitialize", strings.NewReader("{}"))
		if err != nil {
			continue
		}
		req.SetBasicAuth("regent", e.Cluster.Password("restapi"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			e.logf("regent reinit %s: %v", st.Member, err)
			continue
		}
		resp.Body.Close()
		e.logf("operator action after the verdict: regent reinit %s (HTTP %d; state %q, agent: %s)", st.Member, resp.StatusCode, st.State, st.Reason)
		done = append(done, fmt.Sprintf("`regent reinit %s` (HTTP %d; state %q, agent: %s)", st.Member, resp.StatusCode, st.State, st.Reason))
	}
	return done
}

// StartAgent starts a member's agent that is not running.
func (e *Env) StartAgent(m string) error {
	if e.Cluster.AgentPID(m) != 0 {
		return nil
	}
	e.Cluster.Forget(m)
	e.logf("start agent of %s", m)
	return e.Cluster.Start(m)
}

// Close stops everything the environment started and unmounts its tmpfs.
func (e *Env) Close() {
	e.ThawDisks()
	e.ResumeAll()
	e.HealLinks()
	if e.Cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_ = e.Cluster.StopAll(ctx, 20*time.Second)
		cancel()
		for _, m := range e.Members {
			if pid := e.postmaster(m); pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for _, em := range e.etcd {
		if em.running() {
			_ = em.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-em.done:
			case <-time.After(10 * time.Second):
				em.kill()
			}
		}
	}
	for _, p := range e.links() {
		p.Close()
	}
	for _, dir := range e.mounts {
		// PostgreSQL processes may take a moment to exit after SIGKILL.
		for i := 0; i < 50; i++ {
			if exec.Command("umount", dir).Run() == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func nopLogger() *zap.Logger { return zap.NewNop() }
