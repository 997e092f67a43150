package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/localcluster"
)

// regentSystem runs Regent through internal/localcluster: each member is a
// `regent run` process of the binary under test.
type regentSystem struct {
	c       *localcluster.Cluster
	members []Member
}

func newRegent(dir, binary string, etcd []string, p Profile, sync bool, pgParams map[string]string) (*regentSystem, error) {
	dcs := cluster.DefaultDynamicConfig()
	if p.TTL > 0 {
		dcs.TTL, dcs.LoopWait, dcs.RetryTimeout = p.TTL, p.LoopWait, p.RetryTimeout
	}
	if sync {
		// As Patroni's side: synchronous_mode on with Patroni's defaults
		// for the rest (synchronous_node_count 1, not strict).
		dcs.SynchronousMode = cluster.SyncOn
		dcs.SynchronousNodeCount = 1
		dcs.SynchronousModeStrict = false
	}
	dcs.PostgreSQL.Parameters = map[string]string{}
	for k, v := range pgParams {
		dcs.PostgreSQL.Parameters[k] = v
	}
	if err := dcs.Validate(); err != nil {
		return nil, fmt.Errorf("regent dynamic configuration for profile %s: %w", p.Name, err)
	}
	spec := localcluster.Spec{
		Dir:    dir,
		Binary: binary,
		Scope:  "bench",
		Etcd:   etcd,
		BinDir: PGBinDir(),
		DCS:    &dcs,
	}
	s := &regentSystem{}
	for i := 1; i <= 3; i++ {
		pg, err := freePort()
		if err != nil {
			return nil, err
		}
		api, err := freePort()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("r%d", i)
		spec.Members = append(spec.Members, localcluster.MemberSpec{Name: name, PGPort: pg, APIPort: api})
	}
	c, err := localcluster.New(spec)
	if err != nil {
		return nil, err
	}
	s.c = c
	for _, m := range spec.Members {
		s.members = append(s.members, Member{Name: m.Name, PGPort: m.PGPort, APIPort: m.APIPort, DataDir: c.DataDir(m.Name)})
		trackDataDir(c.DataDir(m.Name))
	}
	return s, nil
}

func (s *regentSystem) Name() string      { return "regent" }
func (s *regentSystem) Members() []Member { return s.members }
func (s *regentSystem) Superuser() (string, string) {
	return "postgres", s.c.Password("superuser")
}
func (s *regentSystem) APIURL(name string) string  { return s.c.APIURL(name) }
func (s *regentSystem) AgentPID(name string) int   { return s.c.AgentPID(name) }
func (s *regentSystem) LogPath(name string) string { return s.c.LogPath(name) }

func (s *regentSystem) Start(ctx context.Context) error {
	for _, m := range s.members {
		if err := s.StartAgent(m.Name); err != nil {
			return err
		}
	}
	return nil
}

func (s *regentSystem) StartAgent(name string) error {
	s.c.Forget(name)
	if err := s.c.Start(name); err != nil {
		return err
	}
	track(s.c.AgentPID(name))
	return nil
}

func (s *regentSystem) KillAgent(name string) error {
	pid := s.c.AgentPID(name)
	if pid == 0 {
		return fmt.Errorf("regent member %s is not running", name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-s.c.Exited(name):
	case <-time.After(10 * time.Second):
		return fmt.Errorf("regent member %s did not exit after SIGKILL", name)
	}
	untrack(pid)
	return nil
}

func (s *regentSystem) Stop() {
	pids := map[string]int{}
	for _, m := range s.members {
		pids[m.Name] = s.c.AgentPID(m.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_ = s.c.StopAll(ctx, 30*time.Second)
	for _, m := range s.members {
		untrack(pids[m.Name])
		killPostgresIn(m.DataDir, 5*time.Second)
	}
}

// SyncStandbys are the members of Regent's sync key when leader wrote it,
// read from etcd: Regent's REST API does not show them yet (GET /sync
// answers 503 on every member and GET /cluster has no sync_standby role).
func (s *regentSystem) SyncStandbys(ctx context.Context, leader string) []string {
	vctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	v, err := s.c.View(vctx)
	if err != nil || v.Sync == nil || v.Sync.Leader != leader {
		return nil
	}
	return v.Sync.Members
}

// Switchover posts to the leader's REST API with the generated
// credentials; Regent answers once the candidate leads.
func (s *regentSystem) Switchover(ctx context.Context, leader, candidate string) error {
	body, _ := json.Marshal(map[string]string{"leader": leader, "candidate": candidate})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.APIURL(leader)+"/switchover", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("regent", s.c.Password("restapi"))
	return doSwitchover(req)
}

// errRefused marks a switchover the system refused before changing
// anything (HTTP 412).
var errRefused = errors.New("refused")

func doSwitchover(req *http.Request) error {
	resp, err := (&http.Client{Timeout: 90 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusPreconditionFailed {
		return fmt.Errorf("POST /switchover: %w: %s: %s", errRefused, resp.Status, strings.TrimSpace(string(b)))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /switchover: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// regentVersion runs `regent version`.
func regentVersion(binary string) string {
	out, err := exec.Command(binary, "version").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

// BuildRegent builds ./cmd/regent of the module in moduleDir into dir.
func BuildRegent(ctx context.Context, moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "regent")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/regent-ha/regent/cmd/regent")
	cmd.Dir = moduleDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/regent: %w\n%s", err, out)
	}
	return bin, nil
}
