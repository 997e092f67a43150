package main

import (
	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/internal/ctl"
)

func switchoverCmd() *cobra.Command {
	var t apiTarget
	var o ctl.SwitchoverOptions
	var cancel bool
	cmd := &cobra.Command{
		Use:   "switchover [--leader NAME] [--candidate NAME] [--scheduled TIME|now] [--force]",
		Short: "Hand the leader role over to a healthy replica, now or at a scheduled time",
		Long: `Switchover demotes the current leader gracefully and promotes a replica
that has received all of its WAL, so no acknowledged transaction is lost.

The request goes to the leader's REST API (POST /switchover), or to another
member when the leader's API cannot be reached. Without --candidate the
command lists the candidates and asks for one (an empty answer lets the
cluster choose the healthiest); with --force and no candidate the cluster
chooses without asking. Unless --force is given it asks for confirmation,
which needs a terminal.

A scheduled switchover is shown by "regent list" and cancelled with
"regent switchover --cancel".`,
		Example: `  regent switchover --candidate n2
  regent switchover --candidate n2 --force
  regent switchover --candidate n2 --scheduled 2026-09-01T03:00:00Z --force
  regent switchover --cancel`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, closeFn, err := t.session(cmd, waitingCallTimeout)
			if err != nil {
				return err
			}
			defer closeFn()
			if cancel {
				return s.CancelSwitchover(cmd.Context())
			}
			return s.Switchover(cmd.Context(), o)
		},
	}
	t.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.Leader, "leader", "", "the current leader (checked; default: whoever holds the leader key)")
	f.StringVar(&o.Candidate, "candidate", "", "the member to promote (default: ask, or let the cluster choose with --force)")
	f.StringVar(&o.Scheduled, "scheduled", "", `when to switch over: an RFC 3339 time or "now" (default now)`)
	f.BoolVar(&o.Force, "force", false, "do not ask for a candidate or for confirmation")
	f.BoolVar(&cancel, "cancel", false, "cancel the scheduled switchover (DELETE /switchover)")
	cmd.MarkFlagsMutuallyExclusive("cancel", "candidate")
	cmd.MarkFlagsMutuallyExclusive("cancel", "scheduled")
	cmd.MarkFlagsMutuallyExclusive("cancel", "leader")
	return cmd
}

func failoverCmd() *cobra.Command {
	var t apiTarget
	var o ctl.FailoverOptions
	cmd := &cobra.Command{
		Use:   "failover --candidate NAME [--force]",
		Short: "Promote a named replica, even without a healthy leader (may lose WAL)",
		Long: `Failover promotes the named candidate (POST /failover to its REST API,
or to another member when it cannot be reached). Use it when the cluster
has no leader that can be demoted gracefully; with a healthy leader prefer
"regent switchover", which waits for the candidate to catch up.

Before asking for confirmation the command shows how much WAL the old
leader had acknowledged beyond what the candidate has received: that much
may be lost. --force skips the confirmation, which otherwise needs a
terminal.`,
		Example: `  regent failover --candidate n2
  regent failover --candidate n2 --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, closeFn, err := t.session(cmd, waitingCallTimeout)
			if err != nil {
				return err
			}
			defer closeFn()
			return s.Failover(cmd.Context(), o)
		},
	}
	t.flags(cmd)
	cmd.Flags().StringVar(&o.Candidate, "candidate", "", "the member to promote (required)")
	cmd.Flags().BoolVar(&o.Force, "force", false, "do not ask for confirmation")
	_ = cmd.MarkFlagRequired("candidate")
	return cmd
}
