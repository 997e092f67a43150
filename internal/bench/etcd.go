package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/regent-ha/regent/internal/etcdserver"
	"github.com/regent-ha/regent/internal/testport"
)

// DebianEtcd is the etcd binary of Debian's etcd-server package.
const DebianEtcd = "/usr/bin/etcd"

// Etcd is a single-node etcd the members of one cluster use.
type Etcd interface {
	// Endpoints are client URLs ("http://127.0.0.1:port").
	Endpoints() []string
	// Stop ends the server and waits for it.
	Stop()
}

// etcdProcess is an external etcd process.
type etcdProcess struct {
	cmd    *exec.Cmd
	client string
	done   chan struct{}
}

func (e *etcdProcess) Endpoints() []string { return []string{e.client} }

func (e *etcdProcess) Stop() {
	if e.cmd.Process == nil {
		return
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
}

// startEtcdProcess runs binary as a single-node etcd with its data in dir
// and waits until it answers /health.
func startEtcdProcess(ctx context.Context, binary, dir string) (*etcdProcess, error) {
	cport, err := freePort()
	if err != nil {
		return nil, err
	}
	pport, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(cport)
	peer := "http://127.0.0.1:" + strconv.Itoa(pport)
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary,
		"--name", "bench",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "bench="+peer,
		"--initial-cluster-state", "new",
		// The same timing as Regent's embedded etcd (etcd's defaults).
		"--heartbeat-interval", "100",
		"--election-timeout", "1000",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting etcd: %w", err)
	}
	e := &etcdProcess{cmd: cmd, client: client, done: make(chan struct{})}
	track(cmd.Process.Pid)
	go func() {
		_ = cmd.Wait()
		untrack(cmd.Process.Pid)
		logf.Close()
		close(e.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if etcdHealthy(ctx, client) {
			return e, nil
		}
		select {
		case <-e.done:
			return nil, fmt.Errorf("etcd exited during start; see %s", filepath.Join(dir, "etcd.log"))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			e.Stop()
			return nil, fmt.Errorf("etcd not healthy after 30s; see %s", filepath.Join(dir, "etcd.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func etcdHealthy(ctx context.Context, client string) bool {
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, client+"/health", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == 200 && strings.Contains(string(b), "true")
}

// embeddedEtcd is internal/etcdserver's embedded etcd.
type embeddedEtcd struct {
	e      *embed.Etcd
	client string
}

func (e *embeddedEtcd) Endpoints() []string { return []string{e.client} }
func (e *embeddedEtcd) Stop()               { e.e.Close() }

func startEmbeddedEtcd(dir string) (*embeddedEtcd, error) {
	cport, err := freePort()
	if err != nil {
		return nil, err
	}
	pport, err := freePort()
	if err != nil {
		return nil, err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(cport)
	e, err := etcdserver.StartEmbedded(filepath.Join(dir, "data"), client, "http://127.0.0.1:"+strconv.Itoa(pport), filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	return &embeddedEtcd{e: e, client: client}, nil
}

// startEtcd starts the etcd the options ask for.
func startEtcd(ctx context.Context, o *Options, dir string) (Etcd, error) {
	if o.EmbeddedEtcd {
		return startEmbeddedEtcd(dir)
	}
	return startEtcdProcess(ctx, o.EtcdBinary, dir)
}

// etcdRequests returns the number of gRPC messages etcd has received so
// far, by method, from grpc_server_msg_received_total: one per unary
// request (Range, Put, Txn, LeaseGrant, ...) and one per message on a
// stream (each lease keep-alive, each watch create). etcd's JSON gateway,
// which Patroni uses, forwards to the same gRPC server, so both clients
// are counted the same way.
func etcdRequests(ctx context.Context, client string) (map[string]float64, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, client+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("etcd /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "grpc_server_msg_received_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		method := "?"
		if _, rest, ok := strings.Cut(line, `grpc_method="`); ok {
			method, _, _ = strings.Cut(rest, `"`)
		}
		out[method] += v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("etcd /metrics has no grpc_server_msg_received_total")
	}
	return out, nil
}

func sumValues(m map[string]float64) float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

// freePort returns a TCP port on 127.0.0.1 reserved for this process.
func freePort() (int, error) { return testport.Get() }
