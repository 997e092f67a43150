// Package demo runs `regent demo`: an embedded etcd and three members on
// 127.0.0.1, supervised like systemd's Restart=always, with a demo.env file
// that points `regent list` and psql at the cluster.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/ctl"
	"github.com/regent-ha/regent/internal/etcdserver"
	"github.com/regent-ha/regent/internal/localcluster"
	"github.com/regent-ha/regent/internal/postgres"
)

// Options configures the demo.
type Options struct {
	Dir      string
	PortBase int // etcd client port; peers +1, PostgreSQL +11.., REST +21..
	Members  int
	BinDir   string
	// RestartDelay is how long a dead member stays down before the demo
	// starts it again; longer than the lease TTL, so that killing the
	// leader shows a failover rather than an in-place restart.
	RestartDelay time.Duration
	Out          io.Writer
	Logger       *slog.Logger
}

// DefaultDir is where the demo keeps its state unless told otherwise: a
// directory the unprivileged PostgreSQL user can reach even when the demo
// runs as root.
const DefaultDir = "/var/tmp/regent-demo"

// Run starts the demo and blocks until ctx ends, then stops everything.
func Run(ctx context.Context, o Options) error {
	if o.Members < 1 {
		o.Members = 3
	}
	if o.PortBase == 0 {
		o.PortBase = 23790
	}
	if o.RestartDelay == 0 {
		o.RestartDelay = 8 * time.Second
	}
	binDir, binReason, err := postgres.ResolveBinDir(o.BinDir)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(o.PortBase)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(o.PortBase+1)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating demo directory: %w", err)
	}
	etcd, err := etcdserver.StartEmbedded(filepath.Join(dir, "etcd"), clientURL, peerURL, filepath.Join(dir, "etcd.log"))
	if err != nil {
		return fmt.Errorf("starting embedded etcd on %s (is another demo running? choose --port-base): %w", clientURL, err)
	}
	defer etcd.Close()

	// Every member runs the same server, resolved once here.
	spec := localcluster.Spec{Dir: dir, Binary: self, Scope: "demo", Etcd: []string{clientURL}, BinDir: binDir}
	for i := 1; i <= o.Members; i++ {
		spec.Members = append(spec.Members, localcluster.MemberSpec{
			Name: "n" + strconv.Itoa(i), PGPort: o.PortBase + 10 + i, APIPort: o.PortBase + 20 + i,
		})
	}
	c, err := localcluster.New(spec)
	if err != nil {
		return err
	}
	if err := writeEnv(c); err != nil {
		return err
	}
	for _, m := range spec.Members {
		if err := c.Start(m.Name); err != nil {
			return err
		}
	}
	defer func() {
		fmt.Fprintln(o.Out, "stopping members...")
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.StopAll(sctx, 40*time.Second); err != nil {
			fmt.Fprintln(o.Out, "stop:", err)
		}
		fmt.Fprintln(o.Out, "demo stopped; run the same command again to restart this cluster")
	}()

	fmt.Fprintf(o.Out, "PostgreSQL server: %s (%s)\n", binDir, binReason)
	fmt.Fprintf(o.Out, "starting a %d-member Regent cluster in %s (logs: %s/n*/regent.log)...\n", o.Members, dir, dir)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	view, err := c.WaitHealthy(wctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cluster did not become healthy: %w; see the member logs in %s", err, dir)
	}
	_ = ctl.WriteList(o.Out, view, "table")
	printHowTo(o.Out, c)
	supervise(ctx, c, o)
	return nil
}

// supervise restarts a member whose agent exited, after RestartDelay.
func supervise(ctx context.Context, c *localcluster.Cluster, o Options) {
	for {
		for _, m := range c.Spec.Members {
			select {
			case <-c.Exited(m.Name):
				fmt.Fprintf(o.Out, "%s member %s exited (%v); restarting in %s\n",
					time.Now().Format("15:04:05"), m.Name, c.ExitError(m.Name), o.RestartDelay)
				go func(name string) {
					select {
					case <-ctx.Done():
					case <-time.After(o.RestartDelay):
						if err := c.Start(name); err != nil && !errors.Is(ctx.Err(), context.Canceled) {
							fmt.Fprintf(o.Out, "restarting %s: %v\n", name, err)
						}
					}
				}(m.Name)
				c.Forget(m.Name)
			default:
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func writeEnv(c *localcluster.Cluster) error {
	path := filepath.Join(c.Spec.Dir, "demo.env")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "# source this file: shell variables for the Regent demo cluster\n")
	fmt.Fprintf(f, "export REGENT_ETCD=%s\nexport REGENT_SCOPE=%s\nexport REGENT_NAMESPACE=/service\n", c.Spec.Etcd[0], c.Spec.Scope)
	fmt.Fprintf(f, "export PGPASSFILE=%s\n", filepath.Join(c.Spec.Dir, "secrets", "pgpass"))
	fmt.Fprintf(f, "export REGENT_API_USERNAME=regent\nexport REGENT_API_PASSWORD=%s\n", c.Password("restapi"))
	var hosts, ports string
	for _, m := range c.Spec.Members {
		up := "N" + m.Name[1:]
		fmt.Fprintf(f, "export REGENT_DSN_%s='host=127.0.0.1 port=%d user=postgres dbname=postgres'\n", up, m.PGPort)
		fmt.Fprintf(f, "export REGENT_API_%s=http://127.0.0.1:%d\n", up, m.APIPort)
		if hosts != "" {
			hosts += ","
			ports += ","
		}
		hosts += "127.0.0.1"
		ports += strconv.Itoa(m.PGPort)
	}
	// libpq multi-host DSN that always lands on the writable member.
	fmt.Fprintf(f, "export REGENT_DSN_PRIMARY='host=%s port=%s user=postgres dbname=postgres target_session_attrs=read-write'\n", hosts, ports)
	return writePGPass(filepath.Join(c.Spec.Dir, "secrets", "pgpass"), map[string]string{
		"postgres":   c.Password("superuser"),
		"replicator": c.Password("replication"),
	})
}

// writePGPass writes a libpq password file (mode 0600, which libpq
// requires) with one line per role that matches any host, port and
// database: psql then finds the password whether it connects to a member
// directly or through a load balancer (HAProxy) on a port of its own. It
// is the demo's own file, used only where demo.env sets PGPASSFILE.
func writePGPass(path string, passwords map[string]string) error {
	var b strings.Builder
	b.WriteString("# hostname:port:database:username:password (Regent demo)\n")
	for _, role := range slices.Sorted(maps.Keys(passwords)) {
		fmt.Fprintf(&b, "*:*:*:%s:%s\n", pgpassEscape(role), pgpassEscape(passwords[role]))
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	// An existing file keeps its mode on open: narrow it before writing.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pgpassEscape escapes the characters that are special in a pgpass field.
func pgpassEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
}

func printHowTo(w io.Writer, c *localcluster.Cluster) {
	env := filepath.Join(c.Spec.Dir, "demo.env")
	fmt.Fprintf(w, `
The cluster is up: embedded etcd at %s, members:
`, c.Spec.Etcd[0])
	for _, m := range c.Spec.Members {
		fmt.Fprintf(w, "  %s  PostgreSQL 127.0.0.1:%d  REST http://127.0.0.1:%d/patroni  log %s\n",
			m.Name, m.PGPort, m.APIPort, c.LogPath(m.Name))
	}
	fmt.Fprintf(w, `
In another terminal:
  source %s
  regent list                       # members, roles, timelines, lag
  psql "$REGENT_DSN_PRIMARY"         # always the writable member
  curl -s $REGENT_API_N1/primary     # HAProxy-style health check (200 on the leader)
psql through a load balancer on any other port finds the password too
(PGPASSFILE: one line per role for every host and port).
Kill a member (its agent and/or its postmaster) and watch a replica take over;
the demo restarts a dead member after a few seconds and it rejoins as a replica.
Ctrl-C stops everything.

`, env)
}
