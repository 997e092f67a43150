package bench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// stats holds min / median / max of the successful samples of a value.
type stats struct {
	n             int
	min, med, max float64
	failed, total int
	lost, acked   int
	lostPerRep    []int
	haveValues    bool
}

func summarize(samples []Sample, key string) stats {
	var vals []float64
	st := stats{total: len(samples)}
	for _, s := range samples {
		st.lost += s.Lost
		st.acked += s.Acked
		st.lostPerRep = append(st.lostPerRep, s.Lost)
		v, ok := s.Values[key]
		if !ok {
			st.failed++
			continue
		}
		vals = append(vals, v)
	}
	sort.Float64s(vals)
	st.n = len(vals)
	if st.n > 0 {
		st.haveValues = true
		st.min, st.max = vals[0], vals[st.n-1]
		if st.n%2 == 1 {
			st.med = vals[st.n/2]
		} else {
			st.med = (vals[st.n/2-1] + vals[st.n/2]) / 2
		}
	}
	return st
}

func fmtSec(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.3f", v)
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

// cell renders min / median / max (seconds) and how many repetitions
// failed.
func (st stats) cell() string {
	if !st.haveValues {
		if st.total == 0 {
			return "not run"
		}
		return fmt.Sprintf("failed (%d of %d)", st.failed, st.total)
	}
	s := fmt.Sprintf("%s / **%s** / %s", fmtSec(st.min), fmtSec(st.med), fmtSec(st.max))
	if st.n == 1 {
		s = fmt.Sprintf("**%s** (1 run)", fmtSec(st.med))
	}
	if st.failed > 0 {
		s += fmt.Sprintf(" (%d of %d failed)", st.failed, st.total)
	}
	return s
}

func (st stats) lostCell() string {
	if st.total == 0 {
		return "not run"
	}
	per := make([]string, len(st.lostPerRep))
	for i, l := range st.lostPerRep {
		per[i] = fmt.Sprint(l)
	}
	return fmt.Sprintf("**%d** of %d (%s)", st.lost, st.acked, strings.Join(per, ", "))
}

func ratio(a, b stats) string {
	if !a.haveValues || !b.haveValues || b.med == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a.med/b.med)
}

// row is one line of a profile's table.
type row struct {
	label          string
	regent, patron string
	ratio          string
}

func meanInt64(v []int64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += float64(x)
	}
	return s / float64(len(v))
}

func meanF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func minMaxInt64(v []int64) (int64, int64) {
	lo, hi := int64(math.MaxInt64), int64(0)
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// profileRows builds the rows of one profile's table.
func profileRows(r *Report, profile string) []row {
	reg := r.Find("regent", profile, false)
	pat := r.Find("patroni", profile, false)
	patSync := r.Find("patroni", profile, true)
	regSync := r.Find("regent", profile, true)
	get := func(c *ClusterResult, scen, key string) stats {
		if c == nil {
			return stats{}
		}
		return summarize(c.Scenarios[scen], key)
	}
	cellOr := func(c *ClusterResult, st stats, f func(stats) string) string {
		if c == nil {
			return "not run"
		}
		return f(st)
	}
	var rows []row
	timeRow := func(label, scen, key string) {
		a, b := get(reg, scen, key), get(pat, scen, key)
		rows = append(rows, row{label, cellOr(reg, a, stats.cell), cellOr(pat, b, stats.cell), ratio(a, b)})
	}
	lostRow := func(label, scen string) {
		a, b := get(reg, scen, "write"), get(pat, scen, "write")
		rows = append(rows, row{label, cellOr(reg, a, stats.lostCell), cellOr(pat, b, stats.lostCell), ""})
	}
	syncTimeRow := func(label, scen, key string) {
		a, b := get(regSync, scen, key), get(patSync, scen, key)
		rows = append(rows, row{label, cellOr(regSync, a, stats.cell), cellOr(patSync, b, stats.cell), ratio(a, b)})
	}
	syncLostRow := func(label, scen string) {
		a, b := get(regSync, scen, "write"), get(patSync, scen, "write")
		rows = append(rows, row{label, cellOr(regSync, a, stats.lostCell), cellOr(patSync, b, stats.lostCell), ""})
	}
	timeRow("Host loss: kill → first write acknowledged on the new primary (s)", "hostloss", "write")
	timeRow("Host loss: kill → GET /primary 200 on the new primary (s)", "hostloss", "api")
	timeRow("Postmaster crash: kill → writes acknowledged again (s)", "crash", "write")
	timeRow("Switchover: longest gap between acknowledged writes (s)", "switchover", "gap")
	timeRow("Switchover: duration of the POST /switchover request (s)", "switchover", "duration")
	lostRow("Acknowledged writes lost, host loss, async (total of acked; per run)", "hostloss")
	lostRow("Acknowledged writes lost, postmaster crash, async", "crash")
	lostRow("Acknowledged writes lost, switchover, async", "switchover")
	if patSync != nil || regSync != nil || r.Options.containsMode("sync") {
		syncTimeRow("Synchronous mode: host loss → first write on the new primary (s)", "hostloss", "write")
		syncTimeRow("Synchronous mode: postmaster crash → writes again (s)", "crash", "write")
		syncTimeRow("Synchronous mode: switchover write gap (s)", "switchover", "gap")
		syncLostRow("Acknowledged writes lost, host loss, sync", "hostloss")
		syncLostRow("Acknowledged writes lost, postmaster crash, sync", "crash")
		syncLostRow("Acknowledged writes lost, switchover, sync", "switchover")
	}
	fp := func(c *ClusterResult, f func(*Footprint) (string, float64)) (string, float64) {
		if c == nil {
			return "not run", 0
		}
		if c.Footprint == nil {
			return "failed", 0
		}
		return f(c.Footprint)
	}
	fpRow := func(label string, f func(*Footprint) (string, float64)) {
		a, av := fp(reg, f)
		b, bv := fp(pat, f)
		rt := "–"
		if av > 0 && bv > 0 {
			rt = fmt.Sprintf("%.2f", av/bv)
		}
		rows = append(rows, row{label, a, b, rt})
	}
	fpRow("Idle agent resident memory, VmRSS (MiB; mean of 3 agents, min–max)", func(f *Footprint) (string, float64) {
		lo, hi := minMaxInt64(f.RSSBytes)
		m := meanInt64(f.RSSBytes) / (1 << 20)
		return fmt.Sprintf("**%.1f** (%.1f–%.1f)", m, float64(lo)/(1<<20), float64(hi)/(1<<20)), m
	})
	fpRow("… of which anonymous (heap, stacks) / file-backed (executable, libraries) (MiB, mean)", func(f *Footprint) (string, float64) {
		if len(f.RSSAnonBytes) == 0 {
			return "–", 0
		}
		a, fl := meanInt64(f.RSSAnonBytes)/(1<<20), meanInt64(f.RSSFileBytes)/(1<<20)
		return fmt.Sprintf("%.1f / %.1f", a, fl), a
	})
	fpRow("Idle agent CPU (CPU seconds per minute; mean of 3 agents)", func(f *Footprint) (string, float64) {
		m := meanF(f.CPUPerMin)
		parts := make([]string, len(f.CPUPerMin))
		for i, v := range f.CPUPerMin {
			parts[i] = fmt.Sprintf("%.2f", v)
		}
		return fmt.Sprintf("**%.2f** (%s)", m, strings.Join(parts, ", ")), m
	})
	fpRow("etcd requests per minute caused by the idle cluster", func(f *Footprint) (string, float64) {
		return fmt.Sprintf("**%.0f**", f.EtcdPerMin), f.EtcdPerMin
	})
	api := func(c *ClusterResult, f func(*APIResult) (string, float64)) (string, float64) {
		if c == nil {
			return "not run", 0
		}
		if c.API == nil {
			return "failed", 0
		}
		return f(c.API)
	}
	apiRow := func(label string, f func(*APIResult) (string, float64)) {
		a, av := api(reg, f)
		b, bv := api(pat, f)
		rt := "–"
		if av > 0 && bv > 0 {
			rt = fmt.Sprintf("%.2f", av/bv)
		}
		rows = append(rows, row{label, a, b, rt})
	}
	apiRow(fmt.Sprintf("GET /primary on the leader, %d concurrent clients: requests per second", r.Options.APIClients), func(a *APIResult) (string, float64) {
		s := fmt.Sprintf("**%.0f**", a.RPS)
		if a.Errors > 0 {
			s += fmt.Sprintf(" (%d errors)", a.Errors)
		}
		return s, a.RPS
	})
	apiRow("GET /primary p99 latency (ms)", func(a *APIResult) (string, float64) {
		ms := float64(a.P99) / float64(time.Millisecond)
		return fmt.Sprintf("**%.2f** (p50 %.2f)", ms, float64(a.P50)/float64(time.Millisecond)), ms
	})
	return rows
}

func (o Options) containsSystem(s string) bool { return contains(o.Systems, s) }

// containsMode reports whether the run measured mode ("async", "sync");
// options without modes (reports written before -modes) ran both, or
// only async in smoke mode.
func (o Options) containsMode(m string) bool {
	if len(o.Modes) == 0 {
		return m == "async" || !o.Smoke
	}
	return contains(o.Modes, m)
}

// target is one goal of the issue, checked against the results.
type target struct {
	text   string
	result string
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func targets(r *Report, profile string) []target {
	reg := r.Find("regent", profile, false)
	pat := r.Find("patroni", profile, false)
	if reg == nil {
		return nil
	}
	var out []target
	hl := summarize(reg.Scenarios["hostloss"], "write")
	if pat != nil {
		phl := summarize(pat.Scenarios["hostloss"], "write")
		if hl.haveValues && phl.haveValues {
			if profile == "defaults" {
				out = append(out, target{"host-loss median ≤ 1/4 of Patroni's (defaults)",
					fmt.Sprintf("%s: %s s vs %s s = %.2f", verdict(hl.med <= phl.med/4), fmtSec(hl.med), fmtSec(phl.med), hl.med/phl.med)})
			} else {
				out = append(out, target{"host-loss no slower than Patroni with equal timings",
					fmt.Sprintf("%s: %s s vs %s s = %.2f", verdict(hl.med <= phl.med), fmtSec(hl.med), fmtSec(phl.med), hl.med/phl.med)})
			}
		}
	}
	cr := summarize(reg.Scenarios["crash"], "write")
	if cr.haveValues {
		out = append(out, target{"postmaster crash: writes back within 1.5 s",
			fmt.Sprintf("%s: median %s s, max %s s", verdict(cr.med <= 1.5), fmtSec(cr.med), fmtSec(cr.max))})
	}
	sw := summarize(reg.Scenarios["switchover"], "gap")
	if sw.haveValues {
		out = append(out, target{"switchover gap ≤ 0.5 s median, zero acknowledged writes lost",
			fmt.Sprintf("%s: median %s s, %d lost", verdict(sw.med <= 0.5 && sw.lost == 0), fmtSec(sw.med), sw.lost)})
	}
	if pat != nil && reg.Footprint != nil && pat.Footprint != nil {
		a, b := meanInt64(reg.Footprint.RSSBytes), meanInt64(pat.Footprint.RSSBytes)
		out = append(out, target{"idle agent RSS ≤ half of Patroni's",
			fmt.Sprintf("%s: %.1f MiB vs %.1f MiB = %.2f", verdict(a <= b/2), a/(1<<20), b/(1<<20), a/b)})
	}
	if pat != nil && reg.API != nil && pat.API != nil && pat.API.RPS > 0 {
		out = append(out, target{"GET /primary throughput ≥ 10× Patroni's",
			fmt.Sprintf("%s: %.0f vs %.0f req/s = %.1f×", verdict(reg.API.RPS >= 10*pat.API.RPS), reg.API.RPS, pat.API.RPS, reg.API.RPS/pat.API.RPS)})
	}
	return out
}

// WriteMarkdown writes the report: environment, one table per profile
// with Regent, Patroni and the ratio, the targets, and every sample.
func WriteMarkdown(w io.Writer, r *Report, notes string) {
	e := r.Env
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# Benchmarks: Regent and Patroni on one machine\n\n")
	p("Generated by `regent-bench` (cmd/regent-bench, internal/bench). ")
	p("Each system runs a three-member cluster on 127.0.0.1, one system after the other in the same run, ")
	p("each cluster with its own single-node etcd and the same PostgreSQL parameters.\n\n")
	p("## Run\n\n")
	p("| | |\n|---|---|\n")
	writeRunRows(w, e, r.Started, r.Elapsed)
	p("| machine | %d CPUs (%s), %s memory, kernel %s, %s |\n", e.CPUs, e.CPUModel, e.Memory, e.Kernel, e.OS)
	p("| load average (1/5/15 min, running/total, last pid) | before: %s; after: %s |\n", e.LoadBefore, e.LoadAfter)
	p("| repetitions | host loss and switchover: %d; postmaster crash: %d; synchronous mode: %d each |\n\n", r.Options.Reps, r.Options.CrashReps, r.Options.SyncReps)
	for i, pt := range r.Parts {
		writePart(w, i+1, pt)
	}

	p("## Method\n\n")
	p("- **Client.** One connection per member; every %s the client inserts a new id into every member (writes on replicas fail as read-only). Every acknowledged commit is recorded with monotonic timestamps. A poller asks every member's `GET /primary` every %s.\n", WriteInterval, WriteInterval)
	p("- **Fault timing.** Before each fault the client writes for 2 s plus a random time of up to one `loop_wait` of the system under test, so that faults fall on every phase of the agents' loops (lease renewals).\n")
	p("- **Host loss.** SIGKILL to the primary's agent, then at once to every PostgreSQL process of that member (postmaster and children, as if the host died). Measured: from the kill until the first write sent after the kill is acknowledged by another member, and until another member's `GET /primary` answers 200. Then the agent is started again and the member must rejoin (pg_rewind) before the next run.\n")
	p("- **Postmaster crash.** SIGKILL to the primary's postmaster only. Measured: from the kill until a write sent after the kill is acknowledged anywhere (on the old primary only over a new connection).\n")
	p("- **Switchover.** `POST /switchover` to the leader's REST API naming a replica (Regent with its REST credentials; Patroni's API is what `patronictl switchover --force` calls). Measured: the longest time between two consecutive acknowledged writes from the request until 2 s after its answer (so at least the %s write interval), and the request's duration.\n", WriteInterval)
	p("- **Lost writes.** After each run, once the cluster is healthy again (one primary with `GET /primary` 200, both other members streaming from it), every id acknowledged during the run is looked up on the final primary.\n")
	p("- **Footprint.** With no client traffic, after a 10 s settle: CPU time (utime+stime, with reaped children, from `/proc/<pid>/stat`) and VmRSS (`/proc/<pid>/status`) of each agent process (Regent: `regent run`; Patroni: the `patroni` Python process — PostgreSQL is not counted), and etcd's `grpc_server_msg_received_total` summed over all methods (one per unary request, one per stream message such as a lease keep-alive; Patroni's JSON gateway requests reach the same gRPC server), over a %s window, scaled to a minute.\n", r.Options.IdleWindow)
	p("- **Health-check API.** %d goroutines send `GET /primary` to the leader back to back for %s, each over a keep-alive connection when the server keeps it open; throughput counts 200 answers, p99 is over their latencies. The load generator runs on the same 2 CPUs.\n", r.Options.APIClients, r.Options.APIDuration)
	p("- **Synchronous mode.** A separate cluster per profile and system with synchronous replication on (Regent: `synchronous_mode: on`; Patroni: `synchronous_mode: true`), both with `synchronous_node_count` 1 and not strict, measured with the same scenarios (no footprint or API load). Before each fault the cluster must also have a synchronous standby in the primary's `pg_stat_replication` that the system has published as such (Patroni: role `sync_standby` in `GET /cluster`; Regent: its sync key in etcd, which its REST API does not show yet), since neither system promotes any other member when the primary is lost. A switchover names that standby and is asked again, after 1 s, when the system refuses it (412) because the synchronous standby changed.\n")
	p("- **PostgreSQL parameters (both systems, via bootstrap.dcs):** ")
	var keys []string
	for k := range PGParameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			p(", ")
		}
		p("`%s=%s`", k, PGParameters[k])
	}
	p("; `use_pg_rewind: true`, replication slots, data checksums and scram-sha-256 pg_hba rules for both.\n\n")

	for _, prof := range r.Options.Profiles {
		pr := Profiles[prof]
		p("## Profile \"%s\"\n\n", prof)
		p("Regent: %s. Patroni: %s.\n\n", timings("regent", pr), timings("patroni", pr))
		p("Times are min / **median** / max in seconds over the repetitions; the ratio is of the medians (below 1: Regent is faster / smaller).\n\n")
		p("| measurement | Regent | Patroni | Regent / Patroni |\n|---|---|---|---|\n")
		for _, rw := range profileRows(r, prof) {
			p("| %s | %s | %s | %s |\n", rw.label, rw.regent, rw.patron, rw.ratio)
		}
		p("\n")
		for _, c := range r.Clusters {
			if c.Profile == prof && c.Part > 0 {
				p("%s in %s mode: measured in the separate run %d (see Run).\n\n", displayName(c.System), modeName(c.Sync), c.Part+1)
			}
		}
		for _, sys := range []string{"regent", "patroni"} {
			c := r.Find(sys, prof, false)
			if c == nil || c.Footprint == nil || len(c.Footprint.EtcdByMethod) == 0 {
				continue
			}
			p("%s's idle etcd requests per minute by gRPC method: %s.\n\n", displayName(sys), byMethod(c.Footprint.EtcdByMethod))
		}
		if ts := targets(r, prof); len(ts) > 0 {
			p("Targets (issue):\n\n")
			for _, t := range ts {
				p("- %s — %s\n", t.text, t.result)
			}
			p("\n")
		}
	}
	if notes != "" {
		p("## Notes\n\n%s\n\n", strings.TrimSpace(notes))
	}
	p("## Every run\n\n")
	p("| profile | system | mode | scenario | run | values (s) | acked | lost | error |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Clusters {
		mode := modeName(c.Sync)
		if c.Part > 0 {
			mode += fmt.Sprintf(" (separate run %d)", c.Part+1)
		}
		if c.Err != "" {
			p("| %s | %s | %s | (cluster) | | | | | %s |\n", c.Profile, c.System, mode, mdEscape(c.Err))
		}
		for _, scen := range []string{"hostloss", "crash", "switchover"} {
			for i, s := range c.Scenarios[scen] {
				var keys []string
				for k := range s.Values {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				var vals []string
				for _, k := range keys {
					vals = append(vals, fmt.Sprintf("%s %.3f", k, s.Values[k]))
				}
				p("| %s | %s | %s | %s | %d | %s | %d | %d | %s |\n", c.Profile, c.System, mode, scen, i+1, strings.Join(vals, ", "), s.Acked, s.Lost, mdEscape(s.Err))
			}
		}
	}
	p("\n")
}

func modeName(sync bool) string {
	if sync {
		return "sync"
	}
	return "async"
}

// writePart describes a separate run merged into the report; the main run
// is run 1.
func writePart(w io.Writer, n int, pt Part) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	e := pt.Env
	p("### Separate run %d: %s\n\n", n+1, strings.Join(pt.Clusters, ", "))
	p("These clusters were measured in a separate, later run of the same bench and merged into this report; every other row comes from the run above.\n\n")
	p("| | |\n|---|---|\n")
	writeRunRows(w, e, pt.Started, pt.Elapsed)
	p("| load average (1/5/15 min, running/total, last pid) | before: %s; after: %s |\n", e.LoadBefore, e.LoadAfter)
	p("| repetitions | host loss and switchover: %d; postmaster crash: %d; synchronous mode: %d each |\n\n", pt.Options.Reps, pt.Options.CrashReps, pt.Options.SyncReps)
}

// writeRunRows writes the rows that identify a run: command, commit,
// time and versions.
func writeRunRows(w io.Writer, e Environment, started time.Time, elapsed time.Duration) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("| command | `%s` |\n", e.Command)
	commit := e.Commit
	if e.Dirty {
		commit += " (the work tree had uncommitted changes)"
	}
	p("| commit | %s |\n", commit)
	p("| started | %s, took %s |\n", started.UTC().Format(time.RFC3339), elapsed.Round(time.Second))
	if e.Regent != "" {
		p("| Regent | %s |\n", e.Regent)
	}
	if e.Patroni != "" {
		p("| Patroni | %s (Debian package) |\n", e.Patroni)
	}
	p("| etcd | %s |\n", e.Etcd)
	p("| PostgreSQL | %s |\n", e.Postgres)
	p("| bench built with | %s |\n", e.Go)
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.ReplaceAll(s, "\n", " ")
}

func displayName(sys string) string {
	if sys == "regent" {
		return "Regent"
	}
	return "Patroni"
}

// byMethod renders per-method rates, largest first.
func byMethod(m map[string]float64) string {
	type kv struct {
		k string
		v float64
	}
	var l []kv
	for k, v := range m {
		if v >= 0.5 {
			l = append(l, kv{k, v})
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].k < l[j].k })
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = fmt.Sprintf("%s %.0f", e.k, e.v)
	}
	return strings.Join(parts, ", ")
}
