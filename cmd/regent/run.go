package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/internal/agent"
	"github.com/regent-ha/regent/internal/config"
)

func runCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run -c member.yaml",
		Short: "Run the member agent beside a PostgreSQL server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			a, err := agent.New(cfg, newLogger(cfg.Log))
			if err != nil {
				return err
			}
			a.SetConfigPath(path)
			return a.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "member configuration file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func newLogger(lc config.LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.Level))
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
