// Command regent-nemesis runs Regent's fault-injection matrix on real
// processes: three PostgreSQL members with their agents, a three-member
// etcd cluster, proxies on every link, a workload that records every
// acknowledged write, and checkers for lost writes, dual primaries and
// convergence after the heal (internal/nemesis). It writes the results
// table to docs/safety-results.md.
//
//	go run ./cmd/regent-nemesis -runs 3                # the whole matrix
//	go run ./cmd/regent-nemesis -scenarios 3,7 -modes sync -runs 1
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/regent-ha/regent/internal/nemesis"
)

func main() {
	runs := flag.Int("runs", 3, "runs per scenario and mode")
	scenarios := flag.String("scenarios", "", "comma-separated scenario IDs (e.g. 3,7,7-failsafe); empty: all")
	modes := flag.String("modes", "async,sync,quorum", "comma-separated modes (async, sync, quorum)")
	out := flag.String("out", "docs/safety-results.md", "results file (empty: stdout only)")
	dir := flag.String("dir", "", "work directory (default: a new temporary directory, removed when everything passed)")
	timeout := flag.Duration("timeout", 4*time.Hour, "bound for the whole run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	work := *dir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "regent-nemesis-"); err != nil {
			fail(err)
		}
	}
	// The binaries are built from the work tree as it is now.
	builtFrom := commit()
	regent, etcdNode, err := nemesis.Build(work)
	if err != nil {
		fail(err)
	}
	o := nemesis.MatrixOptions{Dir: work, Regent: regent, EtcdNode: etcdNode, Runs: *runs, Log: os.Stderr}
	if *scenarios != "" {
		o.Scenarios = strings.Split(*scenarios, ",")
	}
	for _, m := range strings.Split(*modes, ",") {
		o.Modes = append(o.Modes, nemesis.Mode(strings.TrimSpace(m)))
	}
	started := time.Now()
	rows, runErr := nemesis.RunMatrix(ctx, o)
	header := fmt.Sprintf("# Safety results\n\nCommit `%s`, %s, %s/%s, %d CPUs, run took %s.\n\nCommand: `go run ./cmd/regent-nemesis %s`\n",
		builtFrom, started.UTC().Format("2006-01-02 15:04 MST"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		time.Since(started).Round(time.Second), strings.Join(os.Args[1:], " "))
	md := nemesis.Markdown(rows, header)
	fmt.Print(md)
	if *out != "" && ctx.Err() == nil {
		// An interrupted run does not replace the last complete results.
		if err := nemesis.WriteFile(*out, md); err != nil {
			fail(err)
		}
	}
	ok := runErr == nil
	for _, r := range rows {
		ok = ok && r.Passed()
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "regent-nemesis:", runErr)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "regent-nemesis: failures; logs kept in", work)
		os.Exit(1)
	}
	if *dir == "" {
		os.RemoveAll(work)
	}
}

func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "regent-nemesis:", err)
	os.Exit(1)
}
