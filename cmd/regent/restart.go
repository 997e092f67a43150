package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/internal/ctl"
)

func restartCmd() *cobra.Command {
	var t apiTarget
	var o ctl.RestartOptions
	var cancel bool
	cmd := &cobra.Command{
		Use:   "restart [MEMBER...] [--role primary|replica|any] [--pending] [--scheduled TIME] [--force]",
		Short: "Restart PostgreSQL on members, now or at a scheduled time",
		Long: `Restart asks each selected member to restart its PostgreSQL server
(POST /restart to the member's REST API). Without MEMBER arguments every
member with the --role is selected. --pending restarts only members whose
changed settings wait for a restart (see "pending restart" in regent list).
A restarted leader keeps the leader role.

--cancel deletes scheduled restarts instead (DELETE /restart). Unless
--force is given the command asks for confirmation, which needs a terminal.`,
		Example: `  regent restart --force                       # every member
  regent restart n1 --pending --force           # n1, if a setting needs it
  regent restart --role replica --scheduled 2026-09-01T03:00:00Z
  regent restart --cancel n2`,
		RunE: func(cmd *cobra.Command, args []string) error {
			// The member answers when the restart is done: after up to
			// its switchover timeout, or --timeout plus 10 s.
			minTimeout := max(waitingCallTimeout, time.Duration(o.Timeout)*time.Second+10*time.Second+ctl.DefaultAPITimeout)
			s, closeFn, err := t.session(cmd, minTimeout)
			if err != nil {
				return err
			}
			defer closeFn()
			if cancel {
				return s.CancelRestart(cmd.Context(), args, o.Role)
			}
			o.Members = args
			return s.Restart(cmd.Context(), o)
		},
	}
	t.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.Role, "role", ctl.RoleAny, "restart only members with this role: primary, replica or any")
	f.BoolVar(&o.Pending, "pending", false, "restart only members with settings waiting for a restart")
	f.StringVar(&o.Scheduled, "scheduled", "", `when to restart: an RFC 3339 time or "now" (default now)`)
	f.IntVar(&o.Timeout, "timeout", 0, "seconds the restart may take before it counts as failed (default: the member's)")
	f.BoolVar(&o.Force, "force", false, "do not ask for confirmation")
	f.BoolVar(&cancel, "cancel", false, "cancel scheduled restarts (DELETE /restart)")
	cmd.MarkFlagsMutuallyExclusive("cancel", "scheduled")
	cmd.MarkFlagsMutuallyExclusive("cancel", "pending")
	return cmd
}

func reloadCmd() *cobra.Command {
	var t apiTarget
	cmd := &cobra.Command{
		Use:   "reload [MEMBER...]",
		Short: "Make members reload their configuration file",
		Long: `Reload asks each named member, or every member, to re-read its
configuration file (POST /reload), as SIGHUP does. The member applies it
within one HA loop.`,
		Example: `  regent reload
  regent reload n1 n2`,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, closeFn, err := t.session(cmd, 0)
			if err != nil {
				return err
			}
			defer closeFn()
			return s.Reload(cmd.Context(), args)
		},
	}
	t.flags(cmd)
	return cmd
}

func reinitCmd() *cobra.Command {
	var t apiTarget
	var o ctl.ReinitOptions
	cmd := &cobra.Command{
		Use:   "reinit MEMBER... [--wait] [--from-leader] [--force]",
		Short: "Rebuild replicas: delete their data directory and clone it again",
		Long: `Reinit asks each named replica to stop PostgreSQL, delete its data
directory and clone it again from the leader or a clonefrom member
(POST /reinitialize). The leader cannot be reinitialized.

--wait follows the members in the cluster view until they run and stream
again (at most 10 minutes), printing their states. --force skips the
confirmation (which otherwise needs a terminal) and asks the member to
cancel an operation in progress.`,
		Example: `  regent reinit n3
  regent reinit n3 --from-leader --wait --force`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, closeFn, err := t.session(cmd, 0)
			if err != nil {
				return err
			}
			defer closeFn()
			o.Members = args
			return s.Reinit(cmd.Context(), o)
		},
	}
	t.flags(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.Wait, "wait", false, "wait until the members run and stream again")
	f.BoolVar(&o.FromLeader, "from-leader", false, "clone from the leader even if a clonefrom member exists")
	f.BoolVar(&o.Force, "force", false, "do not ask for confirmation; cancel an operation in progress")
	return cmd
}
