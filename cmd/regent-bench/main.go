// Command regent-bench benchmarks Regent against Patroni on this machine
// and writes docs/benchmarks.md. See internal/bench and docs/benchmarks.md.
//
//	go run ./cmd/regent-bench                 # full run, both profiles, both systems
//	go run ./cmd/regent-bench -smoke          # Regent only, short (CI)
//	go run ./cmd/regent-bench -systems regent -modes sync -merge full.json -json merged.json
//	                                          # rerun some clusters, merged into an earlier run
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/regent-ha/regent/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	bench.KillLeftovers()
	if err != nil {
		fmt.Fprintln(os.Stderr, "regent-bench:", err)
		os.Exit(1)
	}
	if rep != nil && failures(rep) > 0 {
		fmt.Fprintf(os.Stderr, "regent-bench: %d measurements failed; see the report\n", failures(rep))
		os.Exit(2)
	}
}

// failures counts failed repetitions and clusters.
func failures(r *bench.Report) int {
	n := 0
	for _, c := range r.Clusters {
		if c.Err != "" {
			n++
		}
		for _, ss := range c.Scenarios {
			for _, s := range ss {
				if s.Err != "" {
					n++
				}
			}
		}
	}
	return n
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (*bench.Report, error) {
	fs := flag.NewFlagSet("regent-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		profiles   = fs.String("profiles", "defaults,tuned", "timing profiles: defaults (each system's own), tuned (ttl 10 / loop_wait 2 / retry_timeout 3 for both)")
		systems    = fs.String("systems", "regent,patroni", "systems to run: regent, patroni")
		modes      = fs.String("modes", "async,sync", "replication modes to run each system in: async, sync (synchronous_mode on); -smoke: async")
		reps       = fs.Int("reps", 3, "repetitions of host loss and switchover")
		crashReps  = fs.Int("crash-reps", 0, "repetitions of the postmaster crash (default: -reps)")
		syncReps   = fs.Int("sync-reps", 0, "repetitions of each scenario in synchronous mode (default: -reps)")
		smoke      = fs.Bool("smoke", false, "short run for CI: Regent only, defaults profile, 1 repetition, short windows")
		out        = fs.String("out", "", "Markdown report to write (default docs/benchmarks.md; with -smoke: none)")
		jsonOut    = fs.String("json", "", "also write the raw results as JSON to this file")
		render     = fs.String("render", "", "do not run: render the Markdown report from a JSON file written by -json")
		merge      = fs.String("merge", "", "JSON file of an earlier run (written by -json): the clusters measured now replace its clusters of the same profile, system and mode (or are added), and the report and -json cover the merged results")
		notes      = fs.String("notes", "", "Markdown file whose text goes into the report's Notes section")
		regentBin  = fs.String("regent-bin", "", "regent binary to benchmark (default: go build ./cmd/regent)")
		workDir    = fs.String("work-dir", "", "directory for the clusters (default: a new temporary directory, removed at the end)")
		keep       = fs.Bool("keep", false, "keep the work directory (logs, data directories)")
		etcdKind   = fs.String("etcd", "auto", "etcd for the clusters: debian (/usr/bin/etcd), embedded (internal/etcdserver), auto (debian when installed)")
		idle       = fs.Duration("idle", 0, "footprint window (default 60s; smoke 5s)")
		apiDur     = fs.Duration("api-duration", 0, "GET /primary load duration (default 10s; smoke 2s)")
		noInstall  = fs.Bool("no-install", false, "do not apt-get install patroni and etcd-server when missing")
		quietFlags = fs.Bool("q", false, "no progress output")
	)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var notesText string
	if *notes != "" {
		b, err := os.ReadFile(*notes)
		if err != nil {
			return nil, err
		}
		notesText = string(b)
	}
	if *render != "" {
		rep, err := readReport(*render)
		if err != nil {
			return nil, err
		}
		path := *out
		if path == "" {
			path = "docs/benchmarks.md"
		}
		return rep, writeReport(path, rep, notesText)
	}

	var base *bench.Report
	if *merge != "" {
		if *smoke {
			return nil, fmt.Errorf("-merge and -smoke do not go together")
		}
		var err error
		if base, err = readReport(*merge); err != nil {
			return nil, err
		}
	}

	o := bench.Options{
		Profiles:    splitList(*profiles),
		Systems:     splitList(*systems),
		Modes:       splitList(*modes),
		Reps:        *reps,
		CrashReps:   *crashReps,
		SyncReps:    *syncReps,
		Smoke:       *smoke,
		Keep:        *keep,
		IdleWindow:  *idle,
		APIDuration: *apiDur,
		Log:         stderr,
	}
	if *quietFlags {
		o.Log = io.Discard
	}
	if *smoke {
		o.Systems = []string{"regent"}
		if !flagSet(fs, "modes") {
			o.Modes = []string{"async"}
		}
		if !flagSet(fs, "profiles") {
			o.Profiles = []string{"defaults"}
		}
		o.Reps, o.CrashReps, o.SyncReps = 1, 1, 1
		if o.IdleWindow == 0 {
			o.IdleWindow = 5 * time.Second
		}
		if o.APIDuration == 0 {
			o.APIDuration = 2 * time.Second
		}
		o.FailoverTimeout = 60 * time.Second
		o.RecoverTimeout = 90 * time.Second
		o.StartTimeout = 90 * time.Second
	}
	path := *out
	if path == "" && !*smoke {
		path = "docs/benchmarks.md"
	}

	if err := bench.CheckPrerequisites(o.Systems); err != nil {
		return nil, err
	}
	if contains(o.Systems, "patroni") && !*noInstall {
		if err := bench.EnsurePackages(ctx, stderr); err != nil {
			return nil, err
		}
	}
	switch *etcdKind {
	case "embedded":
		o.EmbeddedEtcd = true
	case "debian":
		if _, err := os.Stat(bench.DebianEtcd); err != nil {
			return nil, fmt.Errorf("%s missing (apt-get install -y etcd-server)", bench.DebianEtcd)
		}
	case "auto":
		if _, err := os.Stat(bench.DebianEtcd); err != nil {
			if contains(o.Systems, "patroni") {
				return nil, fmt.Errorf("%s missing (apt-get install -y etcd-server)", bench.DebianEtcd)
			}
			o.EmbeddedEtcd = true
		}
	default:
		return nil, fmt.Errorf("-etcd: unknown %q (debian, embedded, auto)", *etcdKind)
	}

	dir := *workDir
	if dir == "" {
		d, err := os.MkdirTemp("", "regent-bench-")
		if err != nil {
			return nil, err
		}
		dir = d
		if !*keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// PostgreSQL runs as the postgres user and must reach the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	o.WorkDir = dir
	if *keep {
		fmt.Fprintf(stderr, "work directory: %s (kept)\n", dir)
	}

	if contains(o.Systems, "regent") {
		o.RegentBinary = *regentBin
		if o.RegentBinary == "" {
			bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			bin, err := bench.BuildRegent(bctx, "", dir)
			cancel()
			if err != nil {
				return nil, err
			}
			o.RegentBinary = bin
		} else if abs, err := filepath.Abs(o.RegentBinary); err == nil {
			o.RegentBinary = abs
		}
	}

	o.Defaults()
	env := bench.Gather(o, commandString(args))
	rep, err := bench.Run(ctx, o, env)
	if rep != nil {
		rep.Env.LoadAfter = readLoad()
		// What is written: this run, or the earlier one with this run
		// merged into it. rep stays this run's (failures, smoke table).
		all := rep
		if base != nil && !errors.Is(err, context.Canceled) {
			if *jsonOut != "" {
				// This run alone too, so that nothing measured is lost.
				writeJSON(strings.TrimSuffix(*jsonOut, ".json")+".part.json", rep, stderr)
			}
			bench.Merge(base, rep)
			all = base
		}
		if *jsonOut != "" {
			writeJSON(*jsonOut, all, stderr)
		}
		if path != "" && !errors.Is(err, context.Canceled) {
			if werr := writeReport(path, all, notesText); werr != nil {
				return rep, werr
			}
			fmt.Fprintf(stderr, "wrote %s\n", path)
		}
		if *smoke {
			bench.WriteMarkdown(stdout, rep, "")
		}
	}
	return rep, err
}

func readReport(path string) (*bench.Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &rep, nil
}

func writeJSON(path string, rep *bench.Report, stderr io.Writer) {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(stderr, "writing", path+":", err)
	}
}

func writeReport(path string, rep *bench.Report, notes string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bench.WriteMarkdown(f, rep, notes)
	return f.Close()
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func commandString(args []string) string {
	parts := []string{"go run ./cmd/regent-bench"}
	for _, a := range args {
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func readLoad() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
