package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/regent-ha/regent/internal/cluster"
)

// DataDirState classifies the data directory.
type DataDirState int

// Data directory states.
const (
	// DataDirEmpty: the directory is missing or empty; initdb or a base
	// backup may create a cluster there.
	DataDirEmpty DataDirState = iota + 1
	// DataDirInitialized: the directory holds a PostgreSQL cluster
	// (PG_VERSION and global/pg_control exist).
	DataDirInitialized
)

// String names the state.
func (s DataDirState) String() string {
	switch s {
	case DataDirEmpty:
		return "empty"
	case DataDirInitialized:
		return "initialized"
	}
	return "unknown"
}

// DataDirState inspects the data directory. A directory that is neither
// empty nor a PostgreSQL data directory is an error: Regent never touches
// it.
func (i *Instance) DataDirState() (DataDirState, error) {
	st, err := os.Stat(i.dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return DataDirEmpty, nil
	}
	if err != nil {
		return 0, fmt.Errorf("data directory %s: %w", i.dataDir, err)
	}
	if !st.IsDir() {
		return 0, fmt.Errorf("data directory %s is not a directory; refusing to touch it", i.dataDir)
	}
	ents, err := os.ReadDir(i.dataDir)
	if err != nil {
		return 0, fmt.Errorf("data directory %s: %w", i.dataDir, err)
	}
	if len(ents) == 0 {
		return DataDirEmpty, nil
	}
	if isRegular(filepath.Join(i.dataDir, "PG_VERSION")) && isRegular(filepath.Join(i.dataDir, "global", "pg_control")) {
		return DataDirInitialized, nil
	}
	return 0, fmt.Errorf("data directory %s is not empty but is not a PostgreSQL data directory; refusing to touch it", i.dataDir)
}

func isRegular(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// removeContents deletes everything inside dir but dir itself.
func removeContents(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	for _, e := range ents {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

// ControlData is the part of pg_controldata's output Regent uses.
type ControlData struct {
	// SystemIdentifier is the database system identifier.
	SystemIdentifier string
	// State is the cluster state: "shut down", "in production",
	// "in archive recovery", "shut down in recovery", "in crash recovery"...
	State string
	// TimeLineID is the latest checkpoint's timeline.
	TimeLineID int
	// CheckpointLSN is the latest checkpoint location.
	CheckpointLSN int64
	// MinRecoveryEndLSN is the minimum recovery ending location.
	MinRecoveryEndLSN int64
	// MinRecoveryEndTimeline is the timeline of MinRecoveryEndLSN.
	MinRecoveryEndTimeline int
	// DataChecksums reports whether data page checksums are enabled.
	DataChecksums bool
}

// ControlData runs pg_controldata on the data directory.
func (i *Instance) ControlData(ctx context.Context) (ControlData, error) {
	out, err := i.runTool(ctx, nil, "pg_controldata", "-D", i.dataDir)
	if err != nil {
		return ControlData{}, fmt.Errorf("pg_controldata: %w: %s", err, out)
	}
	return parseControlData(out)
}

// parseControlData parses pg_controldata output (C locale). A CRC warning
// (the file was read while the server rewrote it) is an error: the fields
// may mix two versions.
func parseControlData(out string) (ControlData, error) {
	var cd ControlData
	if strings.Contains(out, "Calculated CRC checksum does not match") {
		return cd, errors.New("pg_controldata: pg_control read while being written (CRC mismatch); read it again")
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	var errs []error
	need := func(k string) string {
		v, ok := fields[k]
		if !ok {
			errs = append(errs, fmt.Errorf("pg_controldata output lacks %q", k))
		}
		return v
	}
	num := func(k string) int {
		v := need(k)
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("pg_controldata %q: %w", k, err))
		}
		return n
	}
	lsn := func(k string) int64 {
		v := need(k)
		if v == "" {
			return 0
		}
		n, err := cluster.ParseLSN(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("pg_controldata %q: %w", k, err))
		}
		return n
	}
	cd.SystemIdentifier = need("Database system identifier")
	cd.State = need("Database cluster state")
	cd.TimeLineID = num("Latest checkpoint's TimeLineID")
	cd.CheckpointLSN = lsn("Latest checkpoint location")
	cd.MinRecoveryEndLSN = lsn("Minimum recovery ending location")
	cd.MinRecoveryEndTimeline = num("Min recovery ending loc's timeline")
	if v, ok := fields["Data page checksum version"]; ok {
		cd.DataChecksums = v != "0"
	}
	return cd, errors.Join(errs...)
}

// recoverySignals are the files that make PostgreSQL start a data
// directory in recovery: standby.signal and recovery.signal (12 and
// later), recovery.conf (11 and older).
var recoverySignals = []string{standbySig, "recovery.signal", "recovery.conf"}

// RecoverySignalled reports whether the data directory holds one of the
// files that make PostgreSQL start it as a standby or recover it from an
// archive.
func (i *Instance) RecoverySignalled() (bool, error) {
	for _, name := range recoverySignals {
		_, err := os.Stat(filepath.Join(i.dataDir, name))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("data directory %s: %w", i.dataDir, err)
		}
	}
	return false, nil
}
