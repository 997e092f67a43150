package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestClassifyRewind: output of real pg_rewind 15 runs (--progress).
func TestClassifyRewind(t *testing.T) {
	const diverged = "pg_rewind: connected to server\n" +
		"pg_rewind: servers diverged at WAL location 0/3000148 on timeline 1\n" +
		"pg_rewind: rewinding from last common checkpoint at 0/2000060 on timeline 1\n"
	tests := []struct {
		name   string
		output string
		kind   FailureKind
		reason string
	}{
		{"source refuses connections",
			"pg_rewind: error: could not connect to server: connection to server at \"127.0.0.1\", port 5433 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?",
			Transient, "refused the connection"},
		{"source restarted while the file list was fetched (the fault-injection finding)",
			diverged + "pg_rewind: reading source file list\n" +
				"pg_rewind: error: could not fetch file list: server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.",
			Transient, "closed the connection"},
		{"source starting up",
			"pg_rewind: error: could not connect to server: connection to server at \"127.0.0.1\", port 5433 failed: FATAL:  the database system is starting up",
			Transient, "starting up"},
		{"source not yet accepting connections",
			"pg_rewind: error: could not connect to server: connection to server at \"127.0.0.1\", port 5433 failed: FATAL:  the database system is not yet accepting connections\nDETAIL:  Consistent recovery state has not been yet reached.",
			Transient, "not yet accepting connections"},
		{"source shutting down",
			"pg_rewind: error: could not connect to server: connection to server at \"127.0.0.1\", port 5433 failed: FATAL:  the database system is shutting down",
			Transient, "shutting down"},
		{"source fenced during the run",
			diverged + "pg_rewind: error: could not fetch file list: FATAL:  terminating connection due to administrator command",
			Transient, "shut down during the run"},
		{"source in crash recovery",
			"pg_rewind: error: could not connect to server: connection to server at \"127.0.0.1\", port 5433 failed: FATAL:  the database system is in recovery mode",
			Transient, "crash recovery"},
		{"source still a standby (older pg_rewind)",
			"pg_rewind: fatal: source server must not be in recovery mode",
			Transient, "still a standby"},
		{"target not shut down cleanly: pg_rewind recovers it on the next attempt",
			"pg_rewind: error: target server must be shut down cleanly",
			Transient, "single-user mode on the next attempt"},
		{"unrecognised failure before the target changed",
			diverged + "pg_rewind: error: something new happened",
			Transient, "something new happened"},
		{"source went away while files were copied: target partly rewound",
			diverged + "pg_rewind: reading source file list\npg_rewind: reading target file list\npg_rewind: reading WAL in target\n" +
				"pg_rewind: need to copy 53 MB (total source directory size is 72 MB)\n     0/54321 kB (0%) copied\n" +
				"pg_rewind: error: could not fetch remote file \"base/5/1259\": server closed the connection unexpectedly",
			NeedsOperator, "only partly rewound"},
		{"killed while syncing",
			diverged + "pg_rewind: need to copy 1 MB (total source directory size is 30 MB)\npg_rewind: creating backup label and updating control file\npg_rewind: syncing target data directory\n",
			NeedsOperator, "partly rewound"},
		{"target without checksums or wal_log_hints",
			"pg_rewind: error: target server needs to use either data checksums or \"wal_log_hints = on\"",
			NeedsOperator, "never rewind this target"},
		{"different systems",
			"pg_rewind: error: source and target clusters are from different systems",
			NeedsOperator, "different clusters"},
		{"no common ancestor",
			"pg_rewind: error: could not find common ancestor of the source and target cluster's timelines",
			NeedsOperator, "no common ancestor"},
		{"target WAL missing",
			diverged + "pg_rewind: error: could not find previous WAL record at 0/2000060: could not open file \"/d/pg_wal/000000010000000000000002\": No such file or directory",
			NeedsOperator, "WAL needed to find the point of divergence is missing"},
		{"crash recovery of the target failed",
			"pg_rewind: executing \"/usr/lib/postgresql/15/bin/postgres\" for target server to complete crash recovery\nFATAL:  could not locate required checkpoint record\npg_rewind: error: postgres single-user mode in target cluster failed",
			NeedsOperator, "single-user mode) failed"},
		{"rejected password",
			"pg_rewind: error: could not connect to server: connection to server at \"127.0.0.1\", port 5433 failed: FATAL:  password authentication failed for user \"postgres\"",
			NeedsOperator, "rejected the password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ClassifyRewind(tt.output)
			if f.Kind != tt.kind || !strings.Contains(f.Reason, tt.reason) {
				t.Fatalf("ClassifyRewind = %v %q, want %v mentioning %q", f.Kind, f.Reason, tt.kind, tt.reason)
			}
		})
	}
}

func TestClassifyBaseBackup(t *testing.T) {
	tests := []struct {
		output string
		kind   FailureKind
		reason string
	}{
		{"pg_basebackup: error: connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?",
			Transient, "refused"},
		{"pg_basebackup: error: could not get COPY data stream: server closed the connection unexpectedly",
			Transient, "closed the connection"},
		{"pg_basebackup: error: connection to server at \"127.0.0.1\", port 5433 failed: FATAL:  the database system is shutting down",
			Transient, "shutting down"},
		{"pg_basebackup: error: something new", Transient, "something new"},
		{"pg_basebackup: error: incompatible server version 16.1", NeedsOperator, "major version"},
		{"pg_basebackup: error: connection to server at \"127.0.0.1\", port 5433 failed: FATAL:  no pg_hba.conf entry for replication connection",
			NeedsOperator, "pg_hba.conf"},
		{"pg_basebackup: error: could not create directory \"/d\": Permission denied", NeedsOperator, "cannot write"},
	}
	for _, tt := range tests {
		if f := ClassifyBaseBackup(tt.output); f.Kind != tt.kind || !strings.Contains(f.Reason, tt.reason) {
			t.Errorf("ClassifyBaseBackup(%q) = %v %q, want %v mentioning %q", tt.output, f.Kind, f.Reason, tt.kind, tt.reason)
		}
	}
}

func TestClassifyStart(t *testing.T) {
	tests := []struct {
		text   string
		kind   FailureKind
		reason string
	}{
		{"start: waiting for PostgreSQL to accept connections: context deadline exceeded (last error: FATAL: the database system is not yet accepting connections)",
			Transient, "not yet accepting"},
		{"start: postmaster exited (exit status 1) before accepting connections: postmaster exited\nlast lines of x:\nFATAL:  pre-existing shared memory block (key 1, ID 2) is still in use",
			Transient, "start failed"},
		{"start: postmaster exited (exit status 1) before accepting connections: postmaster exited\nlast lines of x:\nFATAL:  requested timeline 3 is not a child of this server's history",
			NeedsOperator, "cannot follow"},
		{"start: postmaster exited (exit status 1) before accepting connections: postmaster exited\nlast lines of x:\nPANIC:  could not locate a valid checkpoint record",
			NeedsOperator, "no valid checkpoint"},
		{"start: server is up but Regent cannot log in as \"postgres\": FATAL: password authentication failed",
			NeedsOperator, "credentials"},
	}
	for _, tt := range tests {
		if f := ClassifyStart(tt.text); f.Kind != tt.kind || !strings.Contains(f.Reason, tt.reason) {
			t.Errorf("ClassifyStart(%q) = %v %q, want %v mentioning %q", tt.text, f.Kind, f.Reason, tt.kind, tt.reason)
		}
	}
}

func TestClassifyError(t *testing.T) {
	te := &ToolError{Failure: Failure{Kind: NeedsOperator, Reason: "r"}, Err: errors.New("pg_rewind: exit status 1")}
	if f := Classify(fmt.Errorf("rewind task: %w", te)); f.Kind != NeedsOperator || f.Reason != "r" {
		t.Errorf("wrapped ToolError classified as %+v", f)
	}
	if f := Classify(fmt.Errorf("x: %w", context.Canceled)); f.Kind != Transient {
		t.Errorf("cancelled task classified as %+v", f)
	}
	if f := Classify(errors.New("member \"n2\" has no conn_url in the DCS\nmore")); f.Kind != Transient || f.Reason != "member \"n2\" has no conn_url in the DCS" {
		t.Errorf("plain error classified as %+v", f)
	}
}
