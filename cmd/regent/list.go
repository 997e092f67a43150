package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/config"
	"github.com/regent-ha/regent/internal/ctl"
	"github.com/regent-ha/regent/internal/dcs"
)

// dcsTarget says which cluster a CLI command reads: from a member
// configuration file, or from flags / REGENT_* environment variables.
type dcsTarget struct {
	configPath string
	endpoints  string
	scope      string
	namespace  string
}

func (t *dcsTarget) flags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&t.configPath, "config", "c", os.Getenv("REGENT_CONFIG"), "member configuration file ($REGENT_CONFIG)")
	cmd.Flags().StringVar(&t.endpoints, "etcd", os.Getenv("REGENT_ETCD"), "comma-separated etcd endpoints ($REGENT_ETCD)")
	cmd.Flags().StringVar(&t.scope, "scope", os.Getenv("REGENT_SCOPE"), "cluster name ($REGENT_SCOPE)")
	ns := os.Getenv("REGENT_NAMESPACE")
	if ns == "" {
		ns = "/service"
	}
	cmd.Flags().StringVar(&t.namespace, "namespace", ns, "DCS namespace ($REGENT_NAMESPACE)")
}

func (t *dcsTarget) open(ctx context.Context) (*dcs.Client, error) {
	cfg, _, err := t.resolve()
	if err != nil {
		return nil, err
	}
	return openDCS(ctx, cfg)
}

// resolve returns the configuration the command works with: the member
// configuration file given with -c (fromFile true), or the defaults with the
// etcd endpoints, scope and namespace from the flags.
func (t *dcsTarget) resolve() (cfg config.Config, fromFile bool, err error) {
	if t.configPath != "" {
		loaded, err := config.Load(t.configPath)
		if err != nil {
			return config.Config{}, false, err
		}
		return *loaded, true, nil
	}
	if t.endpoints == "" || t.scope == "" {
		return config.Config{}, false, errors.New("no cluster given: pass -c member.yaml, or --etcd and --scope (or source demo.env, which sets REGENT_ETCD and REGENT_SCOPE)")
	}
	cfg = config.Default()
	cfg.Etcd.Endpoints = strings.Split(t.endpoints, ",")
	cfg.Scope = t.scope
	cfg.Namespace = t.namespace
	return cfg, false, nil
}

// openDCS connects to the etcd of cfg.
func openDCS(ctx context.Context, cfg config.Config) (*dcs.Client, error) {
	tlsCfg, err := cfg.Etcd.TLSConfig()
	if err != nil {
		return nil, err
	}
	pw, _ := cfg.Etcd.Password.Value()
	return dcs.Open(ctx, dcs.Options{
		Endpoints:      cfg.Etcd.Endpoints,
		TLS:            tlsCfg,
		Username:       cfg.Etcd.Username,
		Password:       pw,
		DialTimeout:    3 * time.Second,
		Prefix:         cfg.Prefix(),
		RequestTimeout: 5 * time.Second,
	})
}

// loadView reads one cluster view through t and closes the connection.
func (t *dcsTarget) loadView(ctx context.Context) (*cluster.Cluster, error) {
	client, err := t.open(ctx)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	return client.Load(ctx)
}

func listCmd() *cobra.Command {
	var t dcsTarget
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the members of the cluster with their roles, states, timelines and lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := t.open(cmd.Context())
			if err != nil {
				return err
			}
			defer client.Close()
			view, err := client.Load(cmd.Context())
			if err != nil {
				return err
			}
			return ctl.WriteList(cmd.OutOrStdout(), view, format)
		},
	}
	t.flags(cmd)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "output format: table or json")
	return cmd
}
