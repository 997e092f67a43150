package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// Session is what the mutating operator commands need: a way to read the
// cluster view from the DCS, the REST client, the operator's terminal, and
// polling settings. The cobra commands in cmd/regent fill it; tests use a
// fake Load and an httptest server.
type Session struct {
	// Load reads the current cluster view (dcs.Client.Load).
	Load func(context.Context) (*cluster.Cluster, error)
	// API calls the members' REST APIs.
	API *APIClient
	// Prompt asks questions on the operator's terminal.
	Prompt *Prompter
	// Out receives the command's output; Err progress and warnings.
	Out io.Writer
	// EditorOK says the operator's editor may be started (stdin and stdout
	// are terminals); see EditConfig.
	EditorOK bool
	// Poll is the interval of --wait polling; 1 s when zero.
	Poll time.Duration
	// WaitTimeout bounds --wait; 10 minutes when zero.
	WaitTimeout time.Duration
	// Stdin is read by "--apply -" and "--replace -"; os.Stdin when nil.
	Stdin io.Reader
}

func (s *Session) out() io.Writer {
	if s.Out == nil {
		return io.Discard
	}
	return s.Out
}

func (s *Session) api() *APIClient {
	if s.API == nil {
		return &APIClient{}
	}
	return s.API
}

func (s *Session) prompt() *Prompter {
	if s.Prompt == nil {
		s.Prompt = &Prompter{Out: s.out()}
	}
	return s.Prompt
}

func (s *Session) stdin() io.Reader {
	if s.Stdin != nil {
		return s.Stdin
	}
	return os.Stdin
}

func (s *Session) poll() time.Duration {
	if s.Poll > 0 {
		return s.Poll
	}
	return time.Second
}

func (s *Session) waitTimeout() time.Duration {
	if s.WaitTimeout > 0 {
		return s.WaitTimeout
	}
	return 10 * time.Minute
}

// view loads the cluster view.
func (s *Session) view(ctx context.Context) (*cluster.Cluster, error) {
	if s.Load == nil {
		return nil, errors.New("no cluster to read")
	}
	return s.Load(ctx)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// orderedMembers returns the members with first (if present) at the head,
// then the leader, then the rest by name: the order in which requests that
// any member can serve are tried.
func orderedMembers(c *cluster.Cluster, first string) []*cluster.Member {
	var out []*cluster.Member
	add := func(m *cluster.Member) {
		if m != nil && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	add(c.Member(first))
	add(c.LeaderMember())
	for _, m := range c.SortedMembers() {
		add(m)
	}
	return out
}

// sendToAny sends the request to the members in order and returns the
// first response; it moves to the next member only when a member's API
// cannot be reached (a response, even a refusal, ends the search).
func (s *Session) sendToAny(ctx context.Context, members []*cluster.Member, method, path string, body any, header http.Header) (*cluster.Member, int, []byte, error) {
	var errs []error
	for _, m := range members {
		if m.APIURL == "" {
			errs = append(errs, fmt.Errorf("member %s has no api_url", m.Name))
			continue
		}
		status, resp, err := s.api().DoHeader(ctx, method, m.APIURL, path, body, header)
		if err == nil {
			return m, status, resp, nil
		}
		if ctx.Err() != nil {
			return nil, 0, nil, err
		}
		errs = append(errs, err)
		if len(members) > 1 {
			fmt.Fprintf(s.out(), "Member %s is unreachable (%v); trying the next member\n", m.Name, err)
		}
	}
	if len(errs) == 0 {
		return nil, 0, nil, errors.New("the cluster has no members to send the request to")
	}
	return nil, 0, nil, fmt.Errorf("no member's REST API could be reached: %w", errors.Join(errs...))
}

// memberNames joins names for messages.
func memberNames(ms []*cluster.Member) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return strings.Join(names, ", ")
}
