package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/ha"
	"github.com/regent-ha/regent/internal/metrics"
	"github.com/regent-ha/regent/internal/postgres"
)

// bootstrap races for the initialize key and, on winning, creates the
// cluster: leader key first (so the new primary is never writable without
// it), then the dynamic configuration, initdb, start, roles, and finally the
// system identifier in the initialize key. A failure after initdb removes
// only the data directory this task created.
func (a *Agent) bootstrap(ctx context.Context, dyn cluster.DynamicConfig) (err error) {
	won, err := a.dcs.RaceInitialize(ctx)
	if err != nil || !won {
		return err
	}
	a.log.Info("won the initialize race: bootstrapping a new cluster", "action", "bootstrap")
	got, err := a.dcs.AcquireLeader(ctx)
	if err != nil || !got {
		_ = a.dcs.CancelInitialize(context.WithoutCancel(ctx))
		return errors.Join(errors.New("could not take the leader key for bootstrap"), err)
	}
	created := false
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, running := a.pg.Running(); running {
			_ = a.pg.Stop(cctx, postgres.StopImmediate, time.Second)
		}
		if created {
			if rmErr := os.RemoveAll(a.cfg.PostgreSQL.DataDir); rmErr != nil {
				a.log.Error("removing the data directory of the failed bootstrap", "err", rmErr)
			}
		}
		_ = a.dcs.CancelInitialize(cctx)
		_ = a.dcs.ReleaseLeader(cctx)
	}()
	if _, err := a.dcs.SetConfig(ctx, dyn, 0); err != nil {
		return fmt.Errorf("writing the dynamic configuration: %w", err)
	}
	created = true
	if err := a.pg.InitDB(ctx); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := a.pg.Start(sctx, postgres.StartOptions{}); err != nil {
		return err
	}
	if err := a.pg.EnsureReplicationRole(ctx); err != nil {
		return err
	}
	cd, err := a.pg.ControlData(ctx)
	if err != nil {
		return err
	}
	if err := a.dcs.SetInitialize(ctx, cd.SystemIdentifier); err != nil {
		return err
	}
	a.metrics.RecordPromotion(metrics.PromotionBootstrap)
	a.log.Info("cluster bootstrapped", "system_identifier", cd.SystemIdentifier)
	return nil
}

// claimInitialize adopts the local data directory as the cluster's first
// member: it creates the initialize key holding the directory's system
// identifier if the key does not exist (losing the race aborts the rest
// of the decision), writes the dynamic configuration if there is none and
// has the next leader housekeeping create the replication role. The data
// directory itself is not touched.
func (a *Agent) claimInitialize(ctx context.Context, o ha.Observation, reason string) error {
	sysid := o.PG.SystemID
	if sysid == "" {
		return errors.New("the data directory's system identifier is unknown")
	}
	cctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeoutDuration())
	defer cancel()
	won, err := a.dcs.ClaimInitialize(cctx, sysid)
	if err != nil {
		return err
	}
	if !won {
		return errors.New("another member wrote the initialize key first")
	}
	a.log.Info("adopted the existing data directory: initialize key written with its system identifier",
		"action", "claim_initialize", "reason", reason, "system_identifier", sysid)
	if o.Cluster != nil && o.Cluster.Config == nil {
		if _, err := a.dcs.SetConfig(cctx, a.dyn, 0); err != nil {
			a.log.Warn("writing the dynamic configuration for the adopted cluster", "err", err)
		}
	}
	a.replicationRoleDue = true
	return nil
}
