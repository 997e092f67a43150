package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/internal/ctl"
)

func showConfigCmd() *cobra.Command {
	var t dcsTarget
	cmd := &cobra.Command{
		Use:   "show-config",
		Short: "Print the cluster's dynamic configuration as YAML",
		Long: `Show-config prints the dynamic configuration (the config key in etcd,
shared by all members) as YAML, with the key names of its JSON form.`,
		Example: `  regent show-config
  regent show-config -c /etc/regent/member.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := newSession(cmd, t.loadView, nil)
			return s.ShowConfig(cmd.Context())
		},
	}
	t.flags(cmd)
	return cmd
}

func editConfigCmd() *cobra.Command {
	var t apiTarget
	var o ctl.EditConfigOptions
	cmd := &cobra.Command{
		Use:   "edit-config [-s KEY=VALUE...] [-p PARAM=VALUE...] [--apply FILE|-] [--replace FILE|-] [--force]",
		Short: "Change the cluster's dynamic configuration",
		Long: `Edit-config changes the dynamic configuration shared by all members.

  -s KEY=VALUE     sets a dotted key (ttl, postgresql.use_pg_rewind, ...);
                   VALUE is a YAML scalar and "null" deletes the key (it
                   then takes its default)
  -p NAME=VALUE    sets postgresql.parameters.NAME ("null" deletes it)
  --apply FILE     merges a YAML or JSON document (null deletes)
  --replace FILE   replaces the whole configuration (PUT /config)

FILE "-" is standard input. Without any of these the configuration opens
in $EDITOR (default vi), which needs a terminal.

The command shows a diff of the current and the new configuration, asks
for confirmation unless --force is given, and sends the change as a JSON
merge patch (PATCH /config) pinned to the revision it read: if someone
else changed the configuration meanwhile, nothing is written and the
command fails; run it again.`,
		Example: `  regent edit-config -s ttl=10 -s loop_wait=1
  regent edit-config -p work_mem=8MB -p max_connections=200 --force
  regent edit-config -s postgresql.parameters.work_mem=null
  regent edit-config --apply changes.yaml
  echo '{"ttl": 10}' | regent edit-config --apply - --force
  regent edit-config                       # opens $EDITOR`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, closeFn, err := t.session(cmd, 0)
			if err != nil {
				return err
			}
			defer closeFn()
			o.Editor = os.Getenv("EDITOR")
			return s.EditConfig(cmd.Context(), o)
		},
	}
	t.flags(cmd)
	f := cmd.Flags()
	f.StringArrayVarP(&o.Set, "set", "s", nil, "set a dotted key: KEY=VALUE (VALUE null deletes); repeatable")
	f.StringArrayVarP(&o.PGParams, "pg", "p", nil, "set a PostgreSQL parameter: NAME=VALUE (VALUE null deletes); repeatable")
	f.StringVar(&o.Apply, "apply", "", "merge a YAML/JSON document from FILE (- for standard input)")
	f.StringVar(&o.Replace, "replace", "", "replace the whole configuration with FILE (- for standard input)")
	f.BoolVar(&o.Force, "force", false, "do not ask for confirmation")
	cmd.MarkFlagsMutuallyExclusive("apply", "replace")
	return cmd
}

func pauseCmd(pause bool) *cobra.Command {
	var t apiTarget
	var wait bool
	cmd := &cobra.Command{
		Use:   "pause [--wait]",
		Short: "Put the cluster in maintenance mode: no automatic failover or restarts",
		Long: `Pause turns maintenance mode on (PATCH /config {"pause": true} on any
reachable member). While paused, Regent takes no automatic action: it
neither fails over nor restarts PostgreSQL. "regent resume" ends it.
--wait waits until every member reports the paused state.`,
		Example: `  regent pause --wait`,
	}
	if !pause {
		cmd.Use = "resume [--wait]"
		cmd.Short = "End maintenance mode: automatic failover and restarts again"
		cmd.Long = `Resume turns maintenance mode off (PATCH /config {"pause": false} on any
reachable member). --wait waits until every member reports it.`
		cmd.Example = `  regent resume --wait`
	}
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		s, closeFn, err := t.session(cmd, 0)
		if err != nil {
			return err
		}
		defer closeFn()
		return s.SetPause(cmd.Context(), pause, wait)
	}
	t.flags(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every member reports the new state")
	return cmd
}
