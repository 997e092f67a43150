package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/bench"
)

// logWriter sends progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestSmoke runs `regent-bench -smoke` end to end: a three-member Regent
// cluster, one host loss, one postmaster crash, one switchover, the idle
// footprint and the GET /primary load, and checks that the numbers make
// sense and that nothing is left running.
func TestSmoke(t *testing.T) {
	if bench.PGBinDir() == "" && os.Getenv("CI") != "true" {
		t.Skip("PostgreSQL server binaries not installed")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	dir, err := os.MkdirTemp("", "regent-bench-smoke-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bench.md")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stdout bytes.Buffer
	start := time.Now()
	rep, err := run(ctx, []string{"-smoke", "-out", out, "-work-dir", filepath.Join(dir, "work")}, &stdout, logWriter{t})
	bench.KillLeftovers()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("smoke run took %s", time.Since(start).Round(time.Second))
	if left := processesIn(filepath.Join(dir, "work")); len(left) > 0 {
		t.Errorf("processes left running in the work directory: %v", left)
	}
	if len(rep.Clusters) != 1 {
		t.Fatalf("want one cluster result, got %d", len(rep.Clusters))
	}
	c := rep.Clusters[0]
	if c.System != "regent" || c.Err != "" {
		t.Fatalf("cluster %s: error %q", c.System, c.Err)
	}
	one := func(scen string) bench.Sample {
		ss := c.Scenarios[scen]
		if len(ss) != 1 {
			t.Fatalf("%s: want 1 run, got %d", scen, len(ss))
		}
		if ss[0].Err != "" {
			t.Fatalf("%s: %s", scen, ss[0].Err)
		}
		if ss[0].Acked == 0 {
			t.Errorf("%s: no acknowledged writes", scen)
		}
		return ss[0]
	}
	hl := one("hostloss")
	if hl.Values["write"] <= 0 || hl.Values["api"] <= 0 || hl.Values["write"] > 60 {
		t.Errorf("host loss: implausible failover times %v", hl.Values)
	}
	cr := one("crash")
	if cr.Values["write"] <= 0 {
		t.Errorf("postmaster crash: implausible time %v", cr.Values)
	}
	sw := one("switchover")
	if sw.Values["gap"] <= 0 {
		t.Errorf("switchover: implausible gap %v", sw.Values)
	}
	if sw.Lost != 0 {
		t.Errorf("switchover lost %d acknowledged writes", sw.Lost)
	}
	fp := c.Footprint
	if fp == nil {
		t.Fatal("no footprint")
	}
	for i, rss := range fp.RSSBytes {
		if rss <= 0 {
			t.Errorf("agent %d: RSS %d", i, rss)
		}
	}
	if fp.EtcdPerMin <= 0 {
		t.Errorf("etcd requests per minute %v", fp.EtcdPerMin)
	}
	if c.API == nil || c.API.RPS <= 0 || c.API.P99 <= 0 {
		t.Errorf("GET /primary load: %+v", c.API)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Host loss", "Postmaster crash", "Switchover", "regent version", "Profile \"defaults\""} {
		if want == "regent version" {
			want = rep.Env.Regent
		}
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if !strings.Contains(stdout.String(), "Host loss") {
		t.Errorf("smoke mode printed no table")
	}
}

// processesIn lists live processes whose working directory is below dir.
func processesIn(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err != nil {
			continue
		}
		if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
			continue
		}
		if cwd == dir || strings.HasPrefix(cwd, dir+"/") {
			out = append(out, pid)
		}
	}
	return out
}
