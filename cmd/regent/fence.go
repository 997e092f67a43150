package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/internal/fence"
	"github.com/regent-ha/regent/internal/postgres"
)

// fenceCmd is the fence process the agent starts for itself; it is not
// meant to be run by hand.
func fenceCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:    "fence --data-dir DIR",
		Short:  "Kill the postmaster when the agent stops renewing its deadline (started by regent run)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Outlive the agent's shutdown and a Ctrl-C in its terminal: the
			// fence ends when the agent says so or its pipe closes.
			signal.Ignore(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "fence", "data_dir", dataDir)
			return fence.Run(os.Stdin, func() bool { return postgres.KillPostmaster(dataDir) }, log)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "PostgreSQL data directory whose postmaster to kill")
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}
