package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAPIBase(t *testing.T) {
	for in, want := range map[string]string{
		"http://h:8008/patroni":   "http://h:8008",
		"https://h:8008/patroni/": "https://h:8008",
		"http://h:8008":           "http://h:8008",
		"http://h:8008/":          "http://h:8008",
	} {
		if got := APIBase(in); got != want {
			t.Errorf("APIBase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAPIClientDo(t *testing.T) {
	type seen struct {
		method, path, ctype, body, ifMatch string
		user, pass                         string
		hasAuth                            bool
	}
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{method: r.Method, path: r.URL.Path, ctype: r.Header.Get("Content-Type"), body: string(b), ifMatch: r.Header.Get("If-Match")}
		got.user, got.pass, got.hasAuth = r.BasicAuth()
		switch r.URL.Path {
		case "/switchover":
			if !got.hasAuth {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"error":"authentication required"}`)
				return
			}
			w.WriteHeader(http.StatusPreconditionFailed)
			_, _ = io.WriteString(w, `{"error":"candidate name does not match with sync_standby"}`)
		default:
			_, _ = io.WriteString(w, `Successfully switched over to "n2"`)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	apiURL := srv.URL + "/patroni"

	c := &APIClient{Username: "regent", Password: "s3cret"}
	status, body, err := c.DoHeader(ctx, http.MethodPatch, apiURL, "/config", map[string]any{"pause": true}, http.Header{"If-Match": {"42"}})
	if err != nil || status != http.StatusOK || string(body) != `Successfully switched over to "n2"` {
		t.Fatalf("Do = %d %q %v", status, body, err)
	}
	if got.method != http.MethodPatch || got.path != "/config" || got.ctype != "application/json" || got.body != `{"pause":true}` || got.ifMatch != "42" {
		t.Fatalf("request %+v", got)
	}
	if !got.hasAuth || got.user != "regent" || got.pass != "s3cret" {
		t.Fatalf("basic auth not sent: %+v", got)
	}

	status, body, err = c.Do(ctx, http.MethodPost, apiURL, "/switchover", map[string]string{"leader": "n1"})
	if err != nil || status != http.StatusPreconditionFailed {
		t.Fatalf("Do = %d %v", status, err)
	}
	apiErr := c.NewAPIError(http.MethodPost, apiURL, "/switchover", status, body)
	msg := apiErr.Error()
	if !strings.HasPrefix(msg, "candidate name does not match with sync_standby") || !strings.Contains(msg, "HTTP 412") ||
		!strings.Contains(msg, srv.URL+"/switchover") || strings.Contains(msg, `{"error"`) {
		t.Fatalf("error message %q", msg)
	}

	anon := &APIClient{}
	status, body, err = anon.Do(ctx, http.MethodPost, apiURL, "/switchover", nil)
	if err != nil || got.hasAuth || got.body != "" || got.ctype != "" {
		t.Fatalf("anonymous request: %v %+v", err, got)
	}
	if msg := anon.NewAPIError(http.MethodPost, apiURL, "/switchover", status, body).Error(); !strings.Contains(msg, "authentication required") || !strings.Contains(msg, "REGENT_API_USERNAME") {
		t.Fatalf("401 message %q", msg)
	}

	// Unreachable: the error names the URL.
	srv.Close()
	if _, _, err := c.Do(ctx, http.MethodPost, apiURL, "/reload", nil); err == nil || !strings.Contains(err.Error(), "POST "+srv.URL+"/reload") {
		t.Fatalf("transport error %v", err)
	}
	if _, _, err := c.Do(ctx, http.MethodPost, "", "/reload", nil); err == nil {
		t.Fatal("empty api_url accepted")
	}
	if _, _, err := c.Do(ctx, http.MethodPost, apiURL, "/x", map[string]any{"bad": make(chan int)}); err == nil {
		t.Fatal("unencodable body accepted")
	}
}

func TestResponseMessage(t *testing.T) {
	for in, want := range map[string]string{
		`{"error":"leader name does not match"}`: "leader name does not match",
		`{"message":"reinitialize started"}`:     "reinitialize started",
		`"reload scheduled"`:                     "reload scheduled",
		"Successfully failed over to \"n2\"\n":   `Successfully failed over to "n2"`,
		`{"other":1}`:                            `{"other":1}`,
		"":                                       "",
	} {
		if got := ResponseMessage([]byte(in)); got != want {
			t.Errorf("ResponseMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewHTTPClient(t *testing.T) {
	hc, err := NewHTTPClient(TLSFiles{}, 0)
	if err != nil || hc.Timeout != DefaultAPITimeout {
		t.Fatalf("default client: %v %v", hc, err)
	}
	if _, err := NewHTTPClient(TLSFiles{CAFile: "/nonexistent/ca.pem"}, 0); err == nil || !strings.Contains(err.Error(), "/nonexistent/ca.pem") {
		t.Fatalf("missing CA: %v", err)
	}
	if _, err := NewHTTPClient(TLSFiles{CertFile: "c.pem"}, 0); err == nil {
		t.Fatal("certificate without key accepted")
	}
	// An HTTPS server verified with its own CA.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "ok"})
	}))
	defer srv.Close()
	c := &APIClient{HTTP: srv.Client()}
	if status, _, err := c.Do(context.Background(), http.MethodPost, srv.URL+"/patroni", "/reload", nil); err != nil || status != 200 {
		t.Fatalf("https: %d %v", status, err)
	}
	c = &APIClient{HTTP: hc}
	if _, _, err := c.Do(context.Background(), http.MethodPost, srv.URL+"/patroni", "/reload", nil); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("unverified certificate accepted: %v", err)
	}
}
