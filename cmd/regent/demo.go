package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/internal/demo"
)

func demoCmd() *cobra.Command {
	o := demo.Options{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a complete three-member cluster with an embedded etcd on this machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
			return demo.Run(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Dir, "dir", demo.DefaultDir, "directory for the demo's etcd, data directories, logs and demo.env")
	cmd.Flags().IntVar(&o.PortBase, "port-base", 23790, "first of the ports used on 127.0.0.1 (etcd; PostgreSQL at +11..; REST at +21..)")
	cmd.Flags().IntVar(&o.Members, "members", 3, "number of members")
	cmd.Flags().StringVar(&o.BinDir, "bin-dir", "", "PostgreSQL server binary directory (default: the installed server's, the newest /usr/lib/postgresql/<major>/bin or pg_config --bindir)")
	return cmd
}
