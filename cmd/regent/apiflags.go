package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/config"
	"github.com/regent-ha/regent/internal/ctl"
)

// waitingCallTimeout is the REST timeout of calls the member answers only
// when the action is done (switchover, failover, restart): the member waits
// up to 30 s by default, so the client waits longer to see its answer.
const waitingCallTimeout = 2 * ctl.DefaultAPITimeout

// apiTarget is a dcsTarget plus what calls to the members' REST APIs
// need: credentials, TLS files and a timeout.
type apiTarget struct {
	dcsTarget
	user         string
	passwordFile string
	cacert       string
	cert         string
	key          string
	timeout      time.Duration
}

func (t *apiTarget) flags(cmd *cobra.Command) {
	t.dcsTarget.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&t.user, "api-user", "", "REST API user for basic auth (default $REGENT_API_USERNAME, else restapi.authentication of -c)")
	f.StringVar(&t.passwordFile, "api-password-file", "", "file holding the REST API password (default $REGENT_API_PASSWORD, else restapi.authentication of -c)")
	f.StringVar(&t.cacert, "cacert", os.Getenv("REGENT_API_CACERT"), "PEM CA bundle that verifies the members' HTTPS REST APIs ($REGENT_API_CACERT)")
	f.StringVar(&t.cert, "api-cert", os.Getenv("REGENT_API_CERT"), "PEM client certificate for members with restapi.verify_client ($REGENT_API_CERT)")
	f.StringVar(&t.key, "api-key", os.Getenv("REGENT_API_KEY"), "PEM private key of --api-cert ($REGENT_API_KEY)")
	f.DurationVar(&t.timeout, "api-timeout", ctl.DefaultAPITimeout, "time limit of each REST API call")
}

// credentialsFromConfig returns the REST API credentials of a member
// configuration file's restapi.authentication, or "" when it has none.
func credentialsFromConfig(cfg *config.Config) (user, password string, err error) {
	if cfg == nil || cfg.RestAPI.Authentication == nil {
		return "", "", nil
	}
	a := cfg.RestAPI.Authentication
	pw, err := a.Password.Value()
	if err != nil {
		return "", "", fmt.Errorf("restapi.authentication.password: %w", err)
	}
	return a.Username, pw, nil
}

// credentials resolves the basic-auth credentials: flags over environment
// over the configuration file. cfg is nil without -c.
func (t *apiTarget) credentials(cfg *config.Config) (user, password string, err error) {
	user, password, err = credentialsFromConfig(cfg)
	if err != nil {
		return "", "", err
	}
	if v := os.Getenv("REGENT_API_USERNAME"); v != "" {
		user = v
	}
	if v := os.Getenv("REGENT_API_PASSWORD"); v != "" {
		password = v
	}
	if t.user != "" {
		user = t.user
	}
	if t.passwordFile != "" {
		b, err := os.ReadFile(t.passwordFile)
		if err != nil {
			return "", "", fmt.Errorf("--api-password-file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
		if password == "" {
			return "", "", fmt.Errorf("--api-password-file %s is empty", t.passwordFile)
		}
	}
	switch {
	case user != "" && password == "":
		return "", "", fmt.Errorf("REST API user %q has no password: pass --api-password-file or set REGENT_API_PASSWORD", user)
	case user == "" && password != "":
		return "", "", errors.New("a REST API password was given without a user: pass --api-user or set REGENT_API_USERNAME")
	}
	return user, password, nil
}

// session connects to the cluster's etcd and builds the ctl session for
// cmd; close releases the etcd connection. minTimeout raises the REST call
// timeout for requests known to take longer.
func (t *apiTarget) session(cmd *cobra.Command, minTimeout time.Duration) (s *ctl.Session, closeFn func(), err error) {
	cfg, fromFile, err := t.resolve()
	if err != nil {
		return nil, nil, err
	}
	var fileCfg *config.Config
	if fromFile {
		fileCfg = &cfg
	}
	user, password, err := t.credentials(fileCfg)
	if err != nil {
		return nil, nil, err
	}
	hc, err := ctl.NewHTTPClient(ctl.TLSFiles{CAFile: t.cacert, CertFile: t.cert, KeyFile: t.key}, max(t.timeout, minTimeout))
	if err != nil {
		return nil, nil, err
	}
	client, err := openDCS(cmd.Context(), cfg)
	if err != nil {
		return nil, nil, err
	}
	return newSession(cmd, client.Load, &ctl.APIClient{HTTP: hc, Username: user, Password: password}),
		func() { _ = client.Close() }, nil
}

// newSession builds a ctl session on the process's terminal.
func newSession(cmd *cobra.Command, load func(context.Context) (*cluster.Cluster, error), api *ctl.APIClient) *ctl.Session {
	stdinTTY := ctl.IsTerminal(os.Stdin)
	return &ctl.Session{
		Load:     load,
		API:      api,
		Prompt:   &ctl.Prompter{In: cmd.InOrStdin(), Out: cmd.OutOrStdout(), Interactive: stdinTTY},
		Out:      cmd.OutOrStdout(),
		EditorOK: stdinTTY && ctl.IsTerminal(os.Stdout),
		Stdin:    cmd.InOrStdin(),
	}
}
