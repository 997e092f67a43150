package nemesis

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// MatrixOptions select what RunMatrix runs.
type MatrixOptions struct {
	Dir              string
	Regent, EtcdNode string
	// Scenarios by ID ("3", "7-failsafe"); empty means all.
	Scenarios []string
	Modes     []Mode
	Runs      int
	Log       io.Writer
}

// Row aggregates the runs of one scenario in one mode.
type Row struct {
	Scenario Scenario
	Mode     Mode
	Results  []Result
	Skipped  string
}

// RunMatrix runs every selected scenario Runs times, on one environment
// per (mode, failsafe) combination, healing between runs.
func RunMatrix(ctx context.Context, o MatrixOptions) ([]Row, error) {
	var rows []Row
	for _, mode := range o.Modes {
		for _, failsafe := range []bool{false, true} {
			var selected []Scenario
			for _, sc := range Scenarios() {
				if sc.Failsafe == failsafe && slices.Contains(sc.Modes, mode) && (len(o.Scenarios) == 0 || slices.Contains(o.Scenarios, sc.ID())) {
					selected = append(selected, sc)
				}
			}
			if len(selected) == 0 {
				continue
			}
			dir := filepath.Join(o.Dir, fmt.Sprintf("%s-failsafe-%v", mode, failsafe))
			sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			env, err := Start(sctx, Options{Dir: dir, Regent: o.Regent, EtcdNode: o.EtcdNode, Mode: mode, Failsafe: failsafe, Log: o.Log})
			cancel()
			if err != nil {
				return rows, fmt.Errorf("%s cluster: %w", mode, err)
			}
			runner := &Runner{Env: env}
			for _, sc := range selected {
				row := Row{Scenario: sc, Mode: mode}
				if sc.Unavailable != nil {
					row.Skipped = sc.Unavailable(env)
				}
				for i := 0; i < o.Runs && row.Skipped == ""; i++ {
					res := runner.Execute(ctx, sc)
					row.Results = append(row.Results, res)
					if ctx.Err() != nil {
						break
					}
				}
				rows = append(rows, row)
			}
			env.Close()
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
		}
	}
	return rows, nil
}

// Passed reports whether every run of the row passed (a skipped row has
// no failed run; the table says why it was skipped).
func (r Row) Passed() bool {
	for _, res := range r.Results {
		if !res.Passed() {
			return false
		}
	}
	return true
}

func (r Row) stats() (lost, maxWritable, failovers int, gaps []time.Duration) {
	for _, res := range r.Results {
		lost += res.Verdict.AckedLost
		maxWritable = max(maxWritable, res.Verdict.MaxWritablePrimaries)
		failovers += res.Failovers
		gaps = append(gaps, res.Verdict.WriteGap)
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	return
}

// convergeColumns renders the converged checker for a row: how many runs
// converged within the bound ("operator required: <why>" added when a
// run of a scenario that documents one did not), and the median and
// worst time to converge. A run that never converged ranks above every
// time and reads "not converged"; a run that never reached the heal is
// left out of the times.
func convergeColumns(results []Result) (converged, median, worst string) {
	n, operator := 0, ""
	var times []time.Duration
	const never = time.Duration(1<<63 - 1)
	for _, res := range results {
		c := res.Converge
		if c.Converged {
			n++
		}
		if c.Bound == 0 {
			continue
		}
		switch {
		case c.Converged || c.Late:
			times = append(times, c.Time)
		default:
			times = append(times, never)
		}
		if !c.Converged && c.OperatorRequired != "" {
			operator = c.OperatorRequired
		}
	}
	converged = fmt.Sprintf("%d/%d", n, len(results))
	if operator != "" {
		converged += ", operator required: " + operator
	}
	if len(times) == 0 {
		return converged, "–", "–"
	}
	slices.Sort(times)
	show := func(d time.Duration) string {
		if d == never {
			return "not converged"
		}
		return seconds1(d)
	}
	k := len(times)
	median = show(times[k/2])
	if k%2 == 0 {
		if lo, hi := times[k/2-1], times[k/2]; hi == never {
			median = show(never)
		} else {
			median = seconds1((lo + hi) / 2)
		}
	}
	return converged, median, show(times[k-1])
}

func seconds1(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// Markdown renders the results table and the failures.
func Markdown(rows []Row, header string) string {
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("\n| # | scenario | mode | runs | passed | acked_lost | max_writable_primaries | failovers | write gap median | write gap max | converged | time to converge median | time to converge worst | unknown / recovered | visible_then_lost | worst dual_write_overlap |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.Skipped != "" {
			fmt.Fprintf(&b, "| %s | %s | %s | 0 | skipped: %s | | | | | | | | | | | |\n", r.Scenario.ID(), r.Scenario.Name, r.Mode, r.Skipped)
			continue
		}
		lost, maxW, fo, gaps := r.stats()
		passed := 0
		unknown, recovered, vtl := 0, 0, 0
		worst, hasWorst := time.Duration(0), false
		for _, res := range r.Results {
			if res.Passed() {
				passed++
			}
			unknown += res.Verdict.Unknown
			recovered += res.Verdict.Recovered
			vtl += res.Verdict.VisibleThenLost
			if res.Verdict.HasTransition && (!hasWorst || res.Verdict.DualWriteOverlap > worst) {
				worst, hasWorst = res.Verdict.DualWriteOverlap, true
			}
		}
		med, mx := "", ""
		if n := len(gaps); n > 0 {
			m := gaps[n/2]
			if n%2 == 0 {
				m = (gaps[n/2-1] + gaps[n/2]) / 2
			}
			med, mx = seconds1(m), seconds1(gaps[n-1])
		}
		w := "–"
		if hasWorst {
			w = fmt.Sprintf("%d ms", worst.Milliseconds())
		}
		conv, cmed, cworst := convergeColumns(r.Results)
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s | %d / %d | %d | %s |\n",
			r.Scenario.ID(), r.Scenario.Name, r.Mode, len(r.Results), passed, lost, maxW, fo, med, mx, conv, cmed, cworst, unknown, recovered, vtl, w)
	}
	var failures []string
	for _, r := range rows {
		for i, res := range r.Results {
			if !res.Passed() {
				failures = append(failures, fmt.Sprintf("- %s %s run %d: %s", r.Scenario.ID(), r.Mode, i+1, strings.Join(res.Problems(), "; ")))
			}
		}
	}
	b.WriteString("\n### Failed runs\n\n")
	if len(failures) == 0 {
		b.WriteString("None.\n")
	} else {
		b.WriteString(strings.Join(failures, "\n") + "\n")
	}
	b.WriteString("\n### Run notes\n\n")
	for _, r := range rows {
		for i, res := range r.Results {
			if len(res.Notes) > 0 {
				fmt.Fprintf(&b, "- %s %s run %d: %s\n", r.Scenario.ID(), r.Mode, i+1, strings.Join(res.Notes, "; "))
			}
		}
	}
	return b.String()
}

// WriteFile writes content to path.
func WriteFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }
