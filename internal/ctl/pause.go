package ctl

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// SetPause turns maintenance mode on (pause) or off (resume) with
// PATCH /config {"pause": ...} against the first reachable member (the
// leader first). With wait it polls the view until every member key
// reports the new state.
func (s *Session) SetPause(ctx context.Context, pause, wait bool) error {
	c, err := s.view(ctx)
	if err != nil {
		return err
	}
	if c.Config == nil {
		return fmt.Errorf("cluster %s has no dynamic configuration in the DCS yet (it is written when the first member bootstraps)", c.Scope)
	}
	if c.Config.Pause == pause {
		if pause {
			return fmt.Errorf("cluster %s is already paused", c.Scope)
		}
		return fmt.Errorf("cluster %s is not paused", c.Scope)
	}
	word := "resumed"
	if pause {
		word = "paused"
	}
	m, status, resp, err := s.sendToAny(ctx, orderedMembers(c, c.LeaderName()), http.MethodPatch, "/config", map[string]any{"pause": pause}, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return s.api().NewAPIError(http.MethodPatch, m.APIURL, "/config", status, resp)
	}
	fmt.Fprintf(s.out(), "Success: cluster management is %s\n", word)
	if !wait {
		return nil
	}
	fmt.Fprintf(s.out(), "Waiting for every member to report pause=%t\n", pause)
	ctx, cancel := context.WithTimeout(ctx, s.waitTimeout())
	defer cancel()
	start := time.Now()
	lastPending := ""
	for {
		view, err := s.view(ctx)
		if err == nil {
			pending := map[string]bool{}
			for _, m := range view.SortedMembers() {
				if m.Pause != pause {
					pending[m.Name] = true
				}
			}
			if len(pending) == 0 {
				fmt.Fprintf(s.out(), "All members report pause=%t (%s)\n", pause, time.Since(start).Round(time.Second))
				return nil
			}
			if p := pendingNames(pending); p != lastPending {
				fmt.Fprintf(s.out(), "  still waiting for: %s\n", p)
				lastPending = p
			}
		} else if ctx.Err() == nil {
			fmt.Fprintf(s.out(), "  cannot read the cluster view (%v); retrying\n", err)
		}
		if err := sleep(ctx, s.poll()); err != nil {
			return waitTimeoutError(ctx, err, "the members to report pause="+fmt.Sprint(pause), s.waitTimeout(), lastPending)
		}
	}
}
