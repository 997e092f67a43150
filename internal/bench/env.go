package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Environment describes where and on what a run took place.
type Environment struct {
	Command  string
	Commit   string
	Dirty    bool
	Regent   string
	Patroni  string
	Etcd     string
	Postgres string
	Go       string
	CPUs     int
	CPUModel string
	Memory   string
	Kernel   string
	OS       string
	// LoadBefore and LoadAfter are /proc/loadavg at the start and end.
	LoadBefore, LoadAfter string
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(s)
}

func readFirstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return firstLine(b)
}

func commandLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return firstLine(out)
}

// Gather fills the environment for options o.
func Gather(o Options, command string) Environment {
	e := Environment{Command: command, CPUs: runtime.NumCPU(), Go: runtime.Version()}
	e.Commit = commandLine("git", "rev-parse", "HEAD")
	if out, err := exec.Command("git", "status", "--porcelain").Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		e.Dirty = true
	}
	if o.RegentBinary != "" {
		e.Regent = regentVersion(o.RegentBinary)
	}
	if contains(o.Systems, "patroni") {
		e.Patroni = patroniVersion()
	}
	if o.EmbeddedEtcd {
		e.Etcd = "embedded etcd (internal/etcdserver, go.etcd.io/etcd/server/v3 " + embeddedEtcdVersion() + ")"
	} else {
		e.Etcd = commandLine(o.EtcdBinary, "--version") + " (" + o.EtcdBinary + ", Debian etcd-server, one external process per cluster)"
	}
	e.Postgres = commandLine(PGBinDir()+"/postgres", "--version")
	e.Kernel = readFirstLine("/proc/sys/kernel/osrelease")
	e.OS = "Debian " + readFirstLine("/etc/debian_version")
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				f := strings.Fields(rest)
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					e.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	e.LoadBefore = readFirstLine("/proc/loadavg")
	return e
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func embeddedEtcdVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "go.etcd.io/etcd/server/v3" {
				return d.Version
			}
		}
	}
	return "(version unknown)"
}

// CheckPrerequisites reports what is missing to run the given systems.
func CheckPrerequisites(systems []string) error {
	if _, err := pgBinDir(); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if _, err := postgresCredential(); err != nil {
			return err
		}
	} else if contains(systems, "patroni") {
		return fmt.Errorf("benchmarking Patroni needs root (it runs as the postgres user)")
	}
	return nil
}

// EnsurePackages installs Debian's patroni and etcd-server with apt when
// their binaries are missing, then stops whatever services the packages
// started: the bench runs its own etcd and Patroni processes.
func EnsurePackages(ctx context.Context, log io.Writer) error {
	if fileExists(PatroniBinary) && fileExists(DebianEtcd) {
		return nil
	}
	before := packageEtcdPIDs()
	run := func(args ...string) error {
		fmt.Fprintf(log, "running: %s\n", strings.Join(args, " "))
		cctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = log, log
		return cmd.Run()
	}
	if err := run("apt-get", "update", "-q"); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	if err := run("apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "patroni", "etcd-server"); err != nil {
		return fmt.Errorf("apt-get install patroni etcd-server: %w", err)
	}
	// With systemd the packages start etcd (on 2379) and Patroni (which
	// fails without a configuration). Stop them; without systemd, kill
	// only the etcd process the package started.
	for _, svc := range []string{"patroni", "etcd"} {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_ = exec.CommandContext(cctx, "systemctl", "stop", svc).Run()
		cancel()
	}
	for pid := range packageEtcdPIDs() {
		if !before[pid] {
			fmt.Fprintf(log, "stopping the etcd (pid %d) the package started\n", pid)
			_ = syscall.Kill(pid, syscall.SIGTERM)
			if !waitGone(pid, 10*time.Second) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if !fileExists(PatroniBinary) || !fileExists(DebianEtcd) {
		return fmt.Errorf("patroni or etcd still missing after apt-get install")
	}
	return nil
}

// packageEtcdPIDs lists processes whose command line is exactly
// /usr/bin/etcd (the package's service runs it without arguments,
// configured through /etc/default/etcd).
func packageEtcdPIDs() map[int]bool {
	out := map[int]bool{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 1 && (args[0] == DebianEtcd || args[0] == "etcd") {
			out[pid] = true
		}
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
