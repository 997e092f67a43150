package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/regent-ha/regent/internal/cluster"
)

// HistoryRow is one timeline switch in `regent history`; JSON keys follow
// patronictl's column names.
type HistoryRow struct {
	Timeline  int    `json:"TL"`
	LSN       string `json:"LSN"`
	Reason    string `json:"Reason"`
	Timestamp string `json:"Timestamp"`
	NewLeader string `json:"New Leader"`
}

// historyTimeLayout is Patroni's timestamp format in the history key.
const historyTimeLayout = "2006-01-02T15:04:05.000000-07:00"

// HistoryRows turns the history key into rows, in stored (timeline) order.
func HistoryRows(c *cluster.Cluster) []HistoryRow {
	rows := make([]HistoryRow, 0, len(c.History))
	for _, h := range c.History {
		r := HistoryRow{Timeline: h.Timeline, LSN: cluster.FormatLSN(h.SwitchLSN), Reason: h.Reason, NewLeader: h.NewLeader}
		if !h.Time.IsZero() {
			r.Timestamp = h.Time.Format(historyTimeLayout)
		}
		rows = append(rows, r)
	}
	return rows
}

// WriteHistory prints the history as a table ("table") or JSON ("json").
func WriteHistory(w io.Writer, c *cluster.Cluster, format string) error {
	rows := HistoryRows(c)
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "table", "":
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TL\tLSN\tReason\tTimestamp\tNew Leader")
		for _, r := range rows {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Timeline, r.LSN, r.Reason, r.Timestamp, r.NewLeader)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(rows) == 0 {
			fmt.Fprintln(w, "(no timeline switches yet)")
		}
		return nil
	default:
		return fmt.Errorf("unknown format %q: use table or json", format)
	}
}
