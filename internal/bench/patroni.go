package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
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

	"gopkg.in/yaml.v3"
)

// PatroniBinary is Debian's patroni.
const PatroniBinary = "/usr/bin/patroni"

// patroniSystem runs three `patroni <config>` processes as the postgres
// OS user, against an etcd through Patroni's etcd3 section.
type patroniSystem struct {
	dir       string
	members   []Member
	cred      *syscall.Credential
	superPass string

	mu    sync.Mutex
	procs map[string]*patroniProc
}

type patroniProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *patroniProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// postgresCredential returns the uid/gid of the postgres OS user.
func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("the postgres OS user is needed to run PostgreSQL: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func newPatroni(dir string, etcd []string, p Profile, sync bool, pgParams map[string]string) (*patroniSystem, error) {
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &patroniSystem{dir: dir, cred: cred, superPass: randomSecret(), procs: map[string]*patroniProc{}}
	replPass := randomSecret()
	var hosts []string
	for _, e := range etcd {
		hosts = append(hosts, strings.TrimPrefix(e, "http://"))
	}
	dcs := map[string]any{
		"postgresql": map[string]any{
			"use_pg_rewind": true,
			"use_slots":     true,
			"parameters":    pgParams,
		},
	}
	if p.TTL > 0 {
		dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"] = p.TTL, p.LoopWait, p.RetryTimeout
	}
	if sync {
		dcs["synchronous_mode"] = true
	}
	for i := 1; i <= 3; i++ {
		pg, err := freePort()
		if err != nil {
			return nil, err
		}
		api, err := freePort()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("p%d", i)
		mdir := filepath.Join(dir, name)
		if err := os.MkdirAll(mdir, 0o700); err != nil {
			return nil, err
		}
		m := Member{Name: name, PGPort: pg, APIPort: api, DataDir: filepath.Join(mdir, "data")}
		s.members = append(s.members, m)
		trackDataDir(m.DataDir)
		doc := map[string]any{
			"scope": "bench",
			"name":  name,
			"log":   map[string]any{"level": "INFO"},
			"restapi": map[string]any{
				"listen":          "127.0.0.1:" + strconv.Itoa(api),
				"connect_address": "127.0.0.1:" + strconv.Itoa(api),
			},
			"etcd3": map[string]any{"hosts": hosts},
			"bootstrap": map[string]any{
				"dcs": dcs,
				// Regent's initdb enables data checksums too.
				"initdb": []any{map[string]any{"encoding": "UTF8"}, "data-checksums"},
			},
			"postgresql": map[string]any{
				"listen":          "127.0.0.1:" + strconv.Itoa(pg),
				"connect_address": "127.0.0.1:" + strconv.Itoa(pg),
				"data_dir":        m.DataDir,
				"bin_dir":         PGBinDir(),
				"pgpass":          filepath.Join(mdir, "pgpass"),
				"authentication": map[string]any{
					"superuser":   map[string]any{"username": "postgres", "password": s.superPass},
					"replication": map[string]any{"username": "replicator", "password": replPass},
				},
				// Regent also puts the socket in a directory of its own.
				"parameters": map[string]any{"unix_socket_directories": mdir},
				// The same rules as Regent's default pg_hba.conf.
				"pg_hba": []string{
					"local all all scram-sha-256",
					"host all all 127.0.0.1/32 scram-sha-256",
					"host replication all 127.0.0.1/32 scram-sha-256",
				},
			},
		}
		out, err := yaml.Marshal(doc)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(s.configPath(name), out, 0o600); err != nil {
			return nil, err
		}
	}
	// Patroni and PostgreSQL run as postgres: they own the tree.
	if err := chownTree(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return nil, err
	}
	return s, nil
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

func (s *patroniSystem) configPath(name string) string {
	return filepath.Join(s.dir, name, "patroni.yml")
}

func (s *patroniSystem) Name() string                { return "patroni" }
func (s *patroniSystem) Members() []Member           { return s.members }
func (s *patroniSystem) Superuser() (string, string) { return "postgres", s.superPass }
func (s *patroniSystem) APIURL(name string) string {
	return "http://127.0.0.1:" + strconv.Itoa(member(s, name).APIPort)
}
func (s *patroniSystem) LogPath(name string) string {
	return filepath.Join(s.dir, name+".log")
}

func (s *patroniSystem) Start(ctx context.Context) error {
	for _, m := range s.members {
		if err := s.StartAgent(m.Name); err != nil {
			return err
		}
	}
	return nil
}

func (s *patroniSystem) StartAgent(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.procs[name]; p != nil && !p.exited() {
		return fmt.Errorf("patroni member %s is already running", name)
	}
	logf, err := os.OpenFile(s.LogPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(PatroniBinary, s.configPath(name))
	cmd.Dir = filepath.Join(s.dir, name)
	cmd.Env = []string{
		"HOME=" + filepath.Join(s.dir, name),
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"LANG=C.UTF-8",
		"PYTHONUNBUFFERED=1",
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting patroni %s: %w", name, err)
	}
	p := &patroniProc{cmd: cmd, done: make(chan struct{})}
	track(cmd.Process.Pid)
	go func() {
		_ = cmd.Wait()
		untrack(cmd.Process.Pid)
		logf.Close()
		close(p.done)
	}()
	s.procs[name] = p
	return nil
}

func (s *patroniSystem) proc(name string) *patroniProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[name]
}

func (s *patroniSystem) AgentPID(name string) int {
	if p := s.proc(name); p != nil && !p.exited() {
		return p.cmd.Process.Pid
	}
	return 0
}

func (s *patroniSystem) KillAgent(name string) error {
	p := s.proc(name)
	if p == nil || p.exited() {
		return fmt.Errorf("patroni member %s is not running", name)
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("patroni member %s did not exit after SIGKILL", name)
	}
}

// stopAgent sends SIGTERM (Patroni stops PostgreSQL, then exits) and
// kills it after timeout.
func (s *patroniSystem) stopAgent(name string, timeout time.Duration) {
	p := s.proc(name)
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Stop stops the replicas first, then the leader, so that stopping does
// not cause failovers.
func (s *patroniSystem) Stop() {
	leader := ""
	for _, m := range s.members {
		if httpStatus(context.Background(), s.APIURL(m.Name)+"/primary", time.Second) == 200 {
			leader = m.Name
		}
	}
	var wg sync.WaitGroup
	for _, m := range s.members {
		if m.Name == leader {
			continue
		}
		wg.Add(1)
		go func(n string) {
			defer wg.Done()
			s.stopAgent(n, 40*time.Second)
		}(m.Name)
	}
	wg.Wait()
	if leader != "" {
		s.stopAgent(leader, 40*time.Second)
	}
	for _, m := range s.members {
		killPostgresIn(m.DataDir, 5*time.Second)
	}
}

// SyncStandbys are the members Patroni's GET /cluster shows with the role
// sync_standby (its sync key).
func (s *patroniSystem) SyncStandbys(ctx context.Context, leader string) []string {
	return clusterSyncStandbys(ctx, s.APIURL(leader), leader)
}

// Switchover uses Patroni's POST /switchover, which answers once the
// switchover is done (as `patronictl switchover --force` does).
func (s *patroniSystem) Switchover(ctx context.Context, leader, candidate string) error {
	body, _ := json.Marshal(map[string]string{"leader": leader, "candidate": candidate})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.APIURL(leader)+"/switchover", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return doSwitchover(req)
}

// patroniVersion runs `patroni --version`.
func patroniVersion() string {
	out, err := exec.Command(PatroniBinary, "--version").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}
