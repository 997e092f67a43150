package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/internal/ctl"
)

func historyCmd() *cobra.Command {
	var t dcsTarget
	var format string
	cmd := &cobra.Command{
		Use:   "history [-f table|json]",
		Short: "Show the cluster's timeline switches (failovers and switchovers)",
		Long: `History prints the history key: for each promotion the timeline it
ended, the LSN of the switch, the reason, when it happened and the new
leader.`,
		Example: `  regent history
  regent history -f json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			view, err := t.loadView(cmd.Context())
			if err != nil {
				return err
			}
			return ctl.WriteHistory(cmd.OutOrStdout(), view, format)
		},
	}
	t.flags(cmd)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "output format: table or json")
	return cmd
}

func topologyCmd() *cobra.Command {
	var t dcsTarget
	var format string
	cmd := &cobra.Command{
		Use:   "topology [-f table|json]",
		Short: "Show the members as a replication tree",
		Long: `Topology lists the members like "regent list", ordered as a replication
tree: the leader first, its replicas below it marked "+ ", and cascading
replicas (tags.replicatefrom naming another member) below their upstream.`,
		Example: `  regent topology`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			view, err := t.loadView(cmd.Context())
			if err != nil {
				return err
			}
			return ctl.WriteTopology(cmd.OutOrStdout(), view, format)
		},
	}
	t.flags(cmd)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "output format: table or json")
	return cmd
}

func dsnCmd() *cobra.Command {
	var t dcsTarget
	var role, member string
	cmd := &cobra.Command{
		Use:   "dsn [--role primary|replica|any] [--member NAME]",
		Short: "Print a libpq connection string for the primary, a replica or a member",
		Long: `Dsn prints a libpq key=value connection string (host, port and
dbname=postgres) for: the named --member; else, by --role, the leader
(primary), the streaming replica with the least lag (replica), or the
leader or else the best replica (any). Add user and password yourself.`,
		Example: `  psql "$(regent dsn) user=postgres"
  regent dsn --role replica
  regent dsn --member n2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			view, err := t.loadView(cmd.Context())
			if err != nil {
				return err
			}
			m, err := ctl.SelectDSNMember(view, role, member)
			if err != nil {
				return err
			}
			dsn, err := ctl.DSN(m)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), dsn)
			return err
		},
	}
	t.flags(cmd)
	cmd.Flags().StringVar(&role, "role", ctl.RolePrimary, "which member: primary, replica or any")
	cmd.Flags().StringVar(&member, "member", "", "a member by name (overrides --role)")
	return cmd
}
