package ctl

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"strings"
	"time"
)

// DefaultAPITimeout bounds one REST call when APIClient.HTTP is nil.
const DefaultAPITimeout = 30 * time.Second

// maxResponseBody caps how much of a response is read.
const maxResponseBody = 4 << 20

// APIClient calls the members' REST APIs (the mutating, Patroni-compatible
// endpoints). The zero value works: HTTP defaults to a client with a 30 s
// timeout, and basic auth is sent only when Username is set.
type APIClient struct {
	HTTP     *http.Client
	Username string
	Password string
}

// TLSFiles are the PEM files of HTTPS calls: CAFile verifies the members'
// certificates (system roots when ""), CertFile and KeyFile are a client
// certificate for members with restapi.verify_client.
type TLSFiles struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

// NewHTTPClient returns an HTTP client with the given timeout (30 s when
// zero) using the TLS files.
func NewHTTPClient(files TLSFiles, timeout time.Duration) (*http.Client, error) {
	if timeout <= 0 {
		timeout = DefaultAPITimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if files.CAFile != "" {
		pem, err := os.ReadFile(files.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read CA bundle %q: %w", files.CAFile, unwrapPathError(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %q holds no PEM certificate", files.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	if (files.CertFile == "") != (files.KeyFile == "") {
		return nil, errors.New("a client certificate needs both the certificate and the key file")
	}
	if files.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %q / key %q: %w", files.CertFile, files.KeyFile, err)
		}
		tlsCfg.Certificates = []tls.Certificate{pair}
	}
	tr.TLSClientConfig = tlsCfg
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

// unwrapPathError drops the operation and path of an *os.PathError, which
// the caller's message names.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// APIBase is a member's API base URL: its member key's api_url without the
// trailing "/patroni".
func APIBase(memberAPIURL string) string {
	u := strings.TrimRight(memberAPIURL, "/")
	return strings.TrimRight(strings.TrimSuffix(u, "/patroni"), "/")
}

// Do sends one request to the member whose api_url is memberAPIURL, at path
// (e.g. "/switchover"). A non-nil body is sent as JSON. It returns the
// status and the response body; err is set only when no response arrived
// (and then names the URL). Callers turn unwanted statuses into errors with
// NewAPIError.
func (c *APIClient) Do(ctx context.Context, method, memberAPIURL, path string, body any) (int, []byte, error) {
	return c.DoHeader(ctx, method, memberAPIURL, path, body, nil)
}

// DoHeader is Do with extra request headers (e.g. If-Match).
func (c *APIClient) DoHeader(ctx context.Context, method, memberAPIURL, path string, body any, header http.Header) (int, []byte, error) {
	if memberAPIURL == "" {
		return 0, nil, errors.New("member has no api_url")
	}
	url := APIBase(memberAPIURL) + path
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: encode request: %w", method, url, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/plain")
	if c.Username != "" {
		req.SetBasicAuth(c.Username, c.Password)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultAPITimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return resp.StatusCode, b, fmt.Errorf("%s %s: reading response: %w", method, url, err)
	}
	return resp.StatusCode, b, nil
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the
// method and URL the caller already names.
func unwrapURLError(err error) error {
	var ue *neturl.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// APIError is a member's refusal: a response with an unwanted status.
type APIError struct {
	Method  string
	URL     string
	Status  int
	Message string
	// NoCredentials is set when the request carried no basic auth, so a
	// 401 can suggest how to pass them.
	NoCredentials bool
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("%s (HTTP %d from %s %s)", msg, e.Status, e.Method, e.URL)
	if e.Status == http.StatusUnauthorized && e.NoCredentials {
		s += "; pass --api-user and --api-password-file, or set REGENT_API_USERNAME and REGENT_API_PASSWORD"
	}
	return s
}

// NewAPIError builds the error for an unwanted response; the message is the
// body's "error" field when the body is {"error": "..."}, else its text.
func (c *APIClient) NewAPIError(method, memberAPIURL, path string, status int, body []byte) *APIError {
	return &APIError{
		Method:        method,
		URL:           APIBase(memberAPIURL) + path,
		Status:        status,
		Message:       ResponseMessage(body),
		NoCredentials: c.Username == "",
	}
}

// ResponseMessage renders a response body for people: the "error" (or
// "message") field of a JSON object, a JSON string's value, or the trimmed
// text.
func ResponseMessage(body []byte) string {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return ""
	}
	switch t[0] {
	case '{':
		var obj map[string]any
		if json.Unmarshal(t, &obj) == nil {
			for _, k := range []string{"error", "message"} {
				if s, ok := obj[k].(string); ok && s != "" {
					return s
				}
			}
		}
	case '"':
		var s string
		if json.Unmarshal(t, &s) == nil {
			return s
		}
	}
	return string(t)
}

// isSuccess reports a 2xx status.
func isSuccess(status int) bool { return status >= 200 && status < 300 }
