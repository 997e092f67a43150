// Command regent is Regent's single binary: the member agent (`regent
// run`), the operator CLI and the one-machine demo.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/internal/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "regent",
		Short:         "Regent keeps a PostgreSQL cluster available and safe, with etcd as its consensus store.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), fenceCmd(), listCmd(), demoCmd(), versionCmd(),
		switchoverCmd(), failoverCmd(), restartCmd(), reloadCmd(), reinitCmd(),
		pauseCmd(true), pauseCmd(false), showConfigCmd(), editConfigCmd(),
		historyCmd(), topologyCmd(), dsnCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "regent:", err)
		if errors.Is(err, agent.ErrRefused) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the Regent version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "regent %s\n", agent.Version)
		},
	}
}
