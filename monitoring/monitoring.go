// Package monitoring ships Regent's Prometheus alerting rules
// (regent-rules.yml, with promtool unit tests in regent-rules.test.yml) and
// its Grafana dashboard (grafana-dashboard.json), and embeds them so tools
// can write them out. The files are the product; this package's tests check
// them against the metrics internal/metrics exports, run promtool on the
// rules when it is installed, and check every alert's runbook link against
// docs/runbooks.md.
package monitoring

import _ "embed"

// Rules is regent-rules.yml: the alert rules (Prometheus rule file format).
//
//go:embed regent-rules.yml
var Rules []byte

// Dashboard is grafana-dashboard.json: the Grafana dashboard (schema
// version 39, data source variable DS_PROMETHEUS, cluster variable scope).
//
//go:embed grafana-dashboard.json
var Dashboard []byte
