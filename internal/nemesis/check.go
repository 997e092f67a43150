package nemesis

import (
	"sort"
	"time"
)

// Outcome is what a client knows about one write.
type Outcome int

const (
	// Failed: the write certainly did not happen (refused before it ran).
	Failed Outcome = iota
	// Acked: the server acknowledged the commit without a warning.
	Acked
	// Unknown: the write may or may not have happened (timeout, lost
	// connection, a commit acknowledged with a warning). Never counted as
	// acknowledged, never counted as lost.
	Unknown
)

// Op is one write of the unique-insert workload.
type Op struct {
	ID     int64
	Member string
	// Invoke and Complete are client times on the monotonic clock,
	// relative to the start of the run.
	Invoke, Complete time.Duration
	Outcome          Outcome
	// ServerAt is the server's clock_timestamp() inside the transaction
	// and Timeline the server's WAL timeline, both returned with the
	// acknowledgement. All members run on one host, so their clocks agree.
	ServerAt time.Time
	Timeline int
}

// Sample is one observation of the role prober.
type Sample struct {
	At     time.Duration
	Member string
	// Writable: PostgreSQL answered and is not in recovery.
	Writable bool
	// Primary200: the member's REST GET /primary answered 200.
	Primary200 bool
}

// Verdict is what the checkers computed from one run.
type Verdict struct {
	Acked, Unknown int
	// AckedLost counts acknowledged ids missing from the final read.
	AckedLost int
	// Recovered counts writes of unknown outcome that are in the final read.
	Recovered int
	// VisibleThenLost counts ids seen by a read during the run that are
	// missing at the end.
	VisibleThenLost int
	// MaxWritablePrimaries is the largest number of members whose
	// acknowledged writes (by server time, per member and timeline)
	// overlap: effect-based, it must be 1.
	MaxWritablePrimaries int
	// DualWriteOverlap is the largest value, over changes of the writing
	// member, of (previous writer's last acknowledged commit − next
	// writer's first acknowledged commit); negative is safe. Zero with
	// HasTransition false means the run had no change of writer.
	DualWriteOverlap time.Duration
	HasTransition    bool
	// LateAcks counts acknowledgements a client received from a member
	// after another member's newer segment had already acknowledged a
	// write (client view; an in-flight commit of a frozen primary).
	LateAcks int
	// WriteGap is the longest stretch without an acknowledged write
	// between the fault injection and the end of the run.
	WriteGap time.Duration
	// RoleOverlap and Primary200Overlap are how long the prober saw two
	// members writable, or two members answering /primary with 200.
	RoleOverlap, Primary200Overlap time.Duration
}

// segment is the span of acknowledged writes of one member on one
// timeline, by server time.
type segment struct {
	member     string
	timeline   int
	start, end time.Time
	firstAck   time.Duration // client completion time of its first ack
}

// Check computes the verdict. final is the set of ids read from the
// final primary after healing; seen are ids observed by reads during the
// run; inject and end bound the window of WriteGap.
func Check(ops []Op, samples []Sample, final, seen map[int64]bool, inject, end time.Duration) Verdict {
	var v Verdict
	segs := map[[2]any]*segment{}
	var acks []Op
	for _, op := range ops {
		switch op.Outcome {
		case Acked:
			v.Acked++
			acks = append(acks, op)
			if !final[op.ID] {
				v.AckedLost++
			}
			k := [2]any{op.Member, op.Timeline}
			s := segs[k]
			if s == nil {
				s = &segment{member: op.Member, timeline: op.Timeline, start: op.ServerAt, end: op.ServerAt, firstAck: op.Complete}
				segs[k] = s
			}
			if op.ServerAt.Before(s.start) {
				s.start = op.ServerAt
			}
			if op.ServerAt.After(s.end) {
				s.end = op.ServerAt
			}
			s.firstAck = min(s.firstAck, op.Complete)
		case Unknown:
			v.Unknown++
			if final[op.ID] {
				v.Recovered++
			}
		}
	}
	for id := range seen {
		if !final[id] {
			v.VisibleThenLost++
		}
	}
	ordered := make([]*segment, 0, len(segs))
	for _, s := range segs {
		ordered = append(ordered, s)
	}
	sort.Slice(ordered, func(i, j int) bool { return ordered[i].start.Before(ordered[j].start) })
	v.MaxWritablePrimaries, v.DualWriteOverlap, v.HasTransition = overlap(ordered)
	v.LateAcks = lateAcks(acks, ordered)
	v.WriteGap = writeGap(acks, inject, end)
	v.RoleOverlap, v.Primary200Overlap = roleOverlap(samples)
	return v
}

// overlap sweeps the segments (sorted by start) for the largest number
// alive at one instant and the worst hand-over between writers.
func overlap(segs []*segment) (maxAlive int, worst time.Duration, transitions bool) {
	if len(segs) == 0 {
		return 0, 0, false
	}
	maxAlive = 1
	prevEnd := segs[0].end
	for i := 1; i < len(segs); i++ {
		s := segs[i]
		d := prevEnd.Sub(s.start)
		if !transitions || d > worst {
			worst = d
		}
		transitions = true
		alive := 1
		for _, p := range segs[:i] {
			if !p.end.Before(s.start) {
				alive++
			}
		}
		maxAlive = max(maxAlive, alive)
		if s.end.After(prevEnd) {
			prevEnd = s.end
		}
	}
	return maxAlive, worst, transitions
}

// lateAcks counts acknowledgements from a segment received by the client
// after a later segment's first acknowledgement.
func lateAcks(acks []Op, segs []*segment) int {
	n := 0
	for _, op := range acks {
		for _, s := range segs {
			if s.start.After(op.ServerAt) && (s.member != op.Member || s.timeline != op.Timeline) && op.Complete > s.firstAck {
				n++
				break
			}
		}
	}
	return n
}

// writeGap is the longest interval in [inject, end] without an
// acknowledgement completing.
func writeGap(acks []Op, inject, end time.Duration) time.Duration {
	times := make([]time.Duration, 0, len(acks))
	for _, op := range acks {
		if op.Complete > inject && op.Complete <= end {
			times = append(times, op.Complete)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	prev, gap := inject, time.Duration(0)
	for _, t := range times {
		gap = max(gap, t-prev)
		prev = t
	}
	return max(gap, end-prev)
}

// roleOverlap measures, from the prober's samples, how long at least two
// members were writable at once and how long at least two answered
// /primary with 200. Each sample holds until the member's next sample.
func roleOverlap(samples []Sample) (writable, primary200 time.Duration) {
	sorted := append([]Sample(nil), samples...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].At < sorted[j].At })
	state := map[string]Sample{}
	var prev time.Duration
	for i, s := range sorted {
		if i > 0 {
			w, p := 0, 0
			for _, st := range state {
				if st.Writable {
					w++
				}
				if st.Primary200 {
					p++
				}
			}
			if w >= 2 {
				writable += s.At - prev
			}
			if p >= 2 {
				primary200 += s.At - prev
			}
		}
		state[s.Member] = s
		prev = s.At
	}
	return writable, primary200
}
