package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regent-ha/regent/internal/config"
)

func TestCredentialsPrecedence(t *testing.T) {
	cfg := config.Default()
	cfg.RestAPI.Authentication = &config.BasicAuth{Username: "fromfile", Password: config.NewSecret("filepw")}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("flagpw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name             string
		env              map[string]string
		target           apiTarget
		cfg              *config.Config
		wantUser, wantPW string
		err              string
	}{
		{"nothing", nil, apiTarget{}, nil, "", "", ""},
		{"config file", nil, apiTarget{}, &cfg, "fromfile", "filepw", ""},
		{"environment over file", map[string]string{"REGENT_API_USERNAME": "envuser", "REGENT_API_PASSWORD": "envpw"}, apiTarget{}, &cfg, "envuser", "envpw", ""},
		{"flags over environment", map[string]string{"REGENT_API_USERNAME": "envuser", "REGENT_API_PASSWORD": "envpw"}, apiTarget{user: "flaguser", passwordFile: pwFile}, &cfg, "flaguser", "flagpw", ""},
		{"user without password", nil, apiTarget{user: "u"}, nil, "", "", "has no password"},
		{"password without user", map[string]string{"REGENT_API_PASSWORD": "pw"}, apiTarget{}, nil, "", "", "without a user"},
		{"missing password file", nil, apiTarget{user: "u", passwordFile: "/nonexistent/pw"}, nil, "", "", "--api-password-file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("REGENT_API_USERNAME", tc.env["REGENT_API_USERNAME"])
			t.Setenv("REGENT_API_PASSWORD", tc.env["REGENT_API_PASSWORD"])
			user, pw, err := tc.target.credentials(tc.cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || user != tc.wantUser || pw != tc.wantPW {
				t.Fatalf("got %q %q %v, want %q %q", user, pw, err, tc.wantUser, tc.wantPW)
			}
		})
	}
}
