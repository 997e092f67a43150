package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestReloadTLSAndAccess replaces the certificate and the credentials of a
// running server, as a reload of the member file does: new connections
// see the new certificate, requests the new credentials.
func TestReloadTLSAndAccess(t *testing.T) {
	oldCert, oldPool := selfSigned(t)
	newCert, newPool := selfSigned(t)
	srv, _, op := controlServer(controlCluster())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{oldCert}}
	srv.Access = Access{Username: "regent", Password: "old"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	base := "https://" + ln.Addr().String()
	post := func(trust *tls.Config, password string) (int, error) {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: trust, DisableKeepAlives: true}, Timeout: 5 * time.Second}
		req, _ := http.NewRequest("POST", base+"/reload", nil)
		req.SetBasicAuth("regent", password)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	trustOld, trustNew := &tls.Config{RootCAs: oldPool}, &tls.Config{RootCAs: newPool}
	if code, err := post(trustOld, "old"); err != nil || code != 202 {
		t.Fatalf("before the reload: %d %v", code, err)
	}

	srv.SetTLS(&tls.Config{Certificates: []tls.Certificate{newCert}})
	srv.SetAccess(Access{Username: "regent", Password: "new"})

	if _, err := post(trustOld, "new"); err == nil {
		t.Errorf("a client trusting only the old certificate still connects after SetTLS")
	}
	state := func() tls.ConnectionState {
		conn, err := tls.Dial("tcp", ln.Addr().String(), trustNew)
		if err != nil {
			t.Fatalf("handshake with the new certificate: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState()
	}()
	if got := state.PeerCertificates[0].Raw; !bytes.Equal(got, newCert.Leaf.Raw) {
		t.Errorf("the server presents another certificate than the new one")
	}
	if code, err := post(trustNew, "old"); err != nil || code != 401 {
		t.Errorf("old password after SetAccess: %d %v, want 401", code, err)
	}
	if code, err := post(trustNew, "new"); err != nil || code != 202 {
		t.Errorf("new password after SetAccess: %d %v, want 202", code, err)
	}
	if op.reloads != 2 {
		t.Errorf("reloads = %d, want 2", op.reloads)
	}
}
