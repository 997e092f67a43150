package postgres

import (
	"context"
	"errors"
	"strings"
)

// FailureKind says whether a failed pg_rewind, pg_basebackup or start can
// succeed when it is simply tried again.
type FailureKind int

// Failure kinds.
const (
	// Transient failures come from the source or the network: it was
	// unreachable, restarting, not yet accepting connections, fenced or
	// stopped mid-run, or it closed the connection. The target data
	// directory is as it was before the attempt, so trying again (after a
	// backoff, against the current leader) is safe and can succeed.
	Transient FailureKind = iota + 1
	// NeedsOperator failures repeat on every attempt (a target pg_rewind
	// cannot handle, credentials the source rejects) or left the target
	// data directory unusable (pg_rewind stopped while it was copying
	// files). Only an operator can help: re-clone the member with
	// `regent reinit`, after fixing the cause where there is one.
	NeedsOperator
)

// String names the kind for logs.
func (k FailureKind) String() string {
	switch k {
	case Transient:
		return "transient"
	case NeedsOperator:
		return "needs operator"
	}
	return "unknown"
}

// Failure is a classified failure of a rejoin step: its kind and a short
// reason that says what happened (and, for NeedsOperator, why retrying
// cannot help).
type Failure struct {
	Kind   FailureKind
	Reason string
}

// ToolError is the error Rewind, BaseBackup and Start return when the tool
// or the server failed: the classified failure and the underlying error,
// whose text includes the tool's output or the end of the server log.
type ToolError struct {
	Failure
	Err error
}

func (e *ToolError) Error() string { return e.Err.Error() }
func (e *ToolError) Unwrap() error { return e.Err }

// Classify returns the failure carried by err. An error that is not a
// ToolError (the agent stopped the task, a member without a conn_url, a
// precondition checked before any tool ran) changed nothing on disk and
// counts as transient.
func Classify(err error) Failure {
	var te *ToolError
	if errors.As(err, &te) {
		return te.Failure
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Failure{Kind: Transient, Reason: "interrupted before any tool ran"}
	}
	return Failure{Kind: Transient, Reason: firstLine(err)}
}

func firstLine(err error) string {
	if err == nil {
		return ""
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// pattern maps a text in a tool's output or the server log to a reason.
type pattern struct{ text, reason string }

// sourcePatterns are libpq and server messages meaning that the source
// cannot serve right now: it is down, restarting, stopping, still in
// recovery, overloaded, or went away in the middle of the run.
var sourcePatterns = []pattern{
	{"server closed the connection unexpectedly", "the source closed the connection"},
	{"terminating connection due to administrator command", "the source was shut down during the run"},
	{"the database system is starting up", "the source is starting up"},
	{"the database system is not yet accepting connections", "the source is not yet accepting connections"},
	{"the database system is shutting down", "the source is shutting down"},
	{"the database system is in recovery mode", "the source is in crash recovery"},
	{"must not be in recovery mode", "the source is still a standby"},
	{"connection refused", "the source refused the connection (not running?)"},
	{"no connection to the server", "the connection to the source was lost"},
	{"could not receive data from server", "the connection to the source was lost"},
	{"could not send data to server", "the connection to the source was lost"},
	{"connection timed out", "the source did not answer (connection timed out)"},
	{"timeout expired", "the source did not answer (connect timeout)"},
	{"no route to host", "the source is unreachable (no route to host)"},
	{"network is unreachable", "the source is unreachable (network unreachable)"},
	{"could not translate host name", "the source's host name does not resolve"},
	{"too many connections", "the source has no free connection slot"},
	{"remaining connection slots are reserved", "the source has no free connection slot"},
	{"could not connect to server", "could not connect to the source"},
	{"connection to server at", "could not connect to the source"},
}

// credentialPatterns are refusals that repeat until someone changes the
// credentials or pg_hba.conf.
var credentialPatterns = []pattern{
	{"password authentication failed", "the source rejected the password"},
	{"no pg_hba.conf entry", "the source's pg_hba.conf does not admit this member"},
	{"must be superuser", "the rewind user lacks the required privileges on the source"},
	{"permission denied for function", "the rewind user lacks the required privileges on the source"},
}

// rewindTargetPatterns are pg_rewind checks on the target (or on the pair)
// that fail the same way on every attempt, before anything is changed.
var rewindTargetPatterns = []pattern{
	{`target server needs to use either data checksums or "wal_log_hints = on"`,
		"pg_rewind can never rewind this target: it was initialised without data checksums and runs without wal_log_hints"},
	{"source and target clusters are from different systems",
		"the source and the target are different clusters (system identifiers differ)"},
	{"could not find common ancestor",
		"the source's and the target's timelines have no common ancestor"},
	{"postgres single-user mode in target cluster failed",
		"crash recovery of the target (single-user mode) failed: the target cannot be brought to a consistent state"},
	{"could not find previous WAL record",
		"the target's WAL needed to find the point of divergence is missing"},
	{"could not read WAL record",
		"the target's WAL needed to find the point of divergence is unreadable"},
	{"is not a valid data directory", "the target is not a valid data directory"},
}

// rewindCopyMarkers are lines pg_rewind (run with --progress) prints once
// it has collected everything and starts changing the target: from then
// on, an interrupted run leaves a partly rewound data directory. pg_rewind
// copies whole WAL segments from the source, so running it again would
// read the source's WAL instead of the target's diverged records and miss
// blocks to copy: such a target is unusable and must be re-cloned.
var rewindCopyMarkers = []string{
	"need to copy ",
	"creating backup label and updating control file",
	"syncing target data directory",
}

// RewindStoppedCopying reports whether pg_rewind output shows a run that
// started changing the target and did not finish.
func RewindStoppedCopying(output string) bool {
	lower := strings.ToLower(output)
	if strings.Contains(lower, "pg_rewind: done!") {
		return false
	}
	for _, m := range rewindCopyMarkers {
		if strings.Contains(lower, m) {
			return true
		}
	}
	return false
}

// ClassifyRewind classifies a failed pg_rewind run from its output (stdout
// and stderr, with --progress). It is a pure function of the text:
//
//   - a run that reached the copy phase left the target partly rewound:
//     NeedsOperator, whatever the cause;
//   - a check of the target that fails every time (no data checksums or
//     wal_log_hints, another cluster, no common ancestor, missing target
//     WAL, failed crash recovery of the target) or rejected credentials:
//     NeedsOperator;
//   - anything else happened before pg_rewind changed the target: Transient.
//     That includes every source-side failure, and "target server must be
//     shut down cleanly": pg_rewind runs crash recovery of the target in
//     single-user mode itself on every attempt (as Patroni does before it),
//     so the next attempt starts from a cleanly shut down target.
func ClassifyRewind(output string) Failure {
	lower := strings.ToLower(output)
	cause := match(lower, sourcePatterns)
	if RewindStoppedCopying(output) {
		why := "pg_rewind stopped while copying files from the source"
		if cause != "" {
			why += " (" + cause + ")"
		}
		return Failure{Kind: NeedsOperator, Reason: why + ": the target data directory is only partly rewound and cannot be used or rewound again"}
	}
	if r := match(lower, rewindTargetPatterns); r != "" {
		return Failure{Kind: NeedsOperator, Reason: r}
	}
	if r := match(lower, credentialPatterns); r != "" {
		return Failure{Kind: NeedsOperator, Reason: r}
	}
	switch {
	case cause != "":
		return Failure{Kind: Transient, Reason: cause}
	case strings.Contains(lower, "target server must be shut down cleanly"):
		return Failure{Kind: Transient, Reason: "the target was not shut down cleanly; pg_rewind recovers it in single-user mode on the next attempt"}
	}
	return Failure{Kind: Transient, Reason: "pg_rewind failed before changing the target: " + lastLine(output)}
}

// ClassifyBaseBackup classifies a failed pg_basebackup run from its output.
// BaseBackup empties the target again after a failure, so a retry is always
// safe; only failures that will repeat need an operator: a source running
// another PostgreSQL major version, rejected credentials, a target
// directory the run user cannot write.
func ClassifyBaseBackup(output string) Failure {
	lower := strings.ToLower(output)
	switch {
	case strings.Contains(lower, "incompatible server version"):
		return Failure{Kind: NeedsOperator, Reason: "the source runs another PostgreSQL major version"}
	case strings.Contains(lower, "permission denied"):
		return Failure{Kind: NeedsOperator, Reason: "the run user cannot write the target directory: " + lastLine(output)}
	}
	if r := match(lower, credentialPatterns); r != "" {
		return Failure{Kind: NeedsOperator, Reason: r}
	}
	if r := match(lower, sourcePatterns); r != "" {
		return Failure{Kind: Transient, Reason: r}
	}
	return Failure{Kind: Transient, Reason: "pg_basebackup failed: " + lastLine(output)}
}

// startTargetPatterns are server log messages after which the data
// directory will never start as it is.
var startTargetPatterns = []pattern{
	{"is not a child of this server's history", "the leader's timeline forked before this member's position: its data directory cannot follow it"},
	{"could not locate required checkpoint record", "the checkpoint record the data directory needs is missing"},
	{"could not locate a valid checkpoint record", "the data directory has no valid checkpoint record"},
	{"invalid checkpoint record", "the data directory's checkpoint record is invalid"},
	{"database files are incompatible with server", "the data directory belongs to another PostgreSQL version or build"},
	{"incorrect checksum in control file", "pg_control is corrupt"},
	{"wal ends before end of online backup", "the WAL of the copied backup is incomplete"},
}

// ClassifyStart classifies a failed start of a rewound or cloned data
// directory from the error text of Start (which includes the end of the
// server log). A server that is still starting (waiting for WAL from a
// source that is down) or that lost a race for its port or shared memory
// can start later: Transient. A data directory the server refuses for good
// needs an operator.
func ClassifyStart(text string) Failure {
	lower := strings.ToLower(text)
	if r := match(lower, startTargetPatterns); r != "" {
		return Failure{Kind: NeedsOperator, Reason: r}
	}
	if strings.Contains(lower, "cannot log in as") {
		return Failure{Kind: NeedsOperator, Reason: "the server is up but refuses Regent's credentials"}
	}
	if r := match(lower, sourcePatterns); r != "" {
		return Failure{Kind: Transient, Reason: "start: " + r}
	}
	return Failure{Kind: Transient, Reason: "start failed: " + firstLine(errors.New(text))}
}

func match(lower string, ps []pattern) string {
	for _, p := range ps {
		if strings.Contains(lower, strings.ToLower(p.text)) {
			return p.reason
		}
	}
	return ""
}

// lastLine is the last non-empty line of s, trimmed.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
