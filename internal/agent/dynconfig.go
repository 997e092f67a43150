package agent

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// configProblemRepeat is how often a config key that stays unusable is
// logged again.
const configProblemRepeat = time.Minute

// adoptConfig applies the dynamic configuration of a fresh view. When the
// config key cannot be used (cluster.Cluster.ConfigProblem) the agent keeps
// the configuration it runs with — the last good one, or the member file's
// bootstrap.dcs and the defaults — so elections and failover go on, and it
// reports the problem: an error log when it appears or changes and then
// once a minute, and a config_invalid event in the DCS (GET /events), which
// the first member to see the problem writes. GET /patroni and the metric
// regent_dcs_config_invalid read it from the published view.
func (a *Agent) adoptConfig(ctx context.Context, view *cluster.Cluster) {
	if view.ConfigProblem == "" {
		if a.configProblem != "" {
			a.log.Info("the dynamic configuration in the DCS is valid again; applying it",
				"revision", view.ConfigRevision)
			a.configProblem, a.configProblemLoggedAt = "", time.Time{}
		}
		if view.Config != nil {
			a.applyDynamic(*view.Config)
		}
		return
	}
	reason := fmt.Sprintf("the dynamic configuration in the DCS (revision %d) cannot be used; keeping the current one "+
		"(fix it with `regent edit-config`, or write a whole one with `regent edit-config --replace`): %s",
		view.ConfigRevision, view.ConfigProblem)
	changed := reason != a.configProblem
	if changed || time.Since(a.configProblemLoggedAt) >= configProblemRepeat {
		a.log.Error("ignoring the dynamic configuration in the DCS", "reason", reason)
		a.configProblemLoggedAt = time.Now()
	}
	a.configProblem = reason
	if !changed || slices.ContainsFunc(view.Events, func(e cluster.Event) bool {
		return e.Kind == cluster.EventConfigInvalid && e.Reason == reason
	}) {
		return
	}
	if err := a.recordEvent(ctx, cluster.Event{Kind: cluster.EventConfigInvalid, Reason: reason}); err != nil {
		a.log.Warn("recording the invalid dynamic configuration in the DCS", "err", err)
		a.configProblem = "" // try again next loop
	}
}
