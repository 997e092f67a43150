package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/internal/agent"
	"github.com/regent-ha/regent/internal/config"
	"github.com/regent-ha/regent/internal/sdnotify"
)

func runCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run -c member.yaml",
		Short: "Run the member agent beside a PostgreSQL server",
		Long: `Run runs the member agent until SIGINT or SIGTERM, which stop PostgreSQL
and leave the cluster cleanly. SIGHUP rereads the configuration file, as
POST /reload and "regent reload" do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Catch SIGHUP before anything else: its default action
			// would end the agent, and on a leader a dead agent means
			// a fence and a failover.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			// Before any child process starts: FromEnv keeps
			// $NOTIFY_SOCKET from PostgreSQL and the fence process.
			notify := sdnotify.FromEnv()
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			level := new(slog.LevelVar)
			a, err := agent.New(cfg, newLogger(cfg.Log, level))
			if err != nil {
				return err
			}
			a.SetConfigPath(path)
			a.SetLogLevel(level)
			a.SetNotifier(notify)
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			go reloadOnHUP(ctx, a, hup)
			return a.Run(ctx)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "member configuration file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// reloadOnHUP reloads the agent's configuration on every SIGHUP until ctx
// ends. Signals that arrive during a reload are coalesced into one more.
// Agent.Reload logs its outcome.
func reloadOnHUP(ctx context.Context, a *agent.Agent, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_, _ = a.Reload(ctx, "SIGHUP")
		}
	}
}

// newLogger returns the agent's logger at lc.Level, kept in level so that
// a reload can change it.
func newLogger(lc config.LogConfig, level *slog.LevelVar) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(lc.Level))
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
