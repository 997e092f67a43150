package agent

import (
	"time"

	"github.com/regent-ha/regent/internal/postgres"
)

// receiverRecheck is how soon a replica looks again while its WAL receiver
// has just started and received nothing yet.
const receiverRecheck = 100 * time.Millisecond

// receiverWatch notices a WAL receiver that has just started streaming and
// has not received anything yet. Its pg_last_wal_receive_lsn() is then the
// segment boundary it started at, not WAL it received: a replica
// observed at that instant (the first loop after a clone or a start runs
// the moment PostgreSQL accepts connections) would publish for a whole
// loop a position up to a WAL segment behind a leader whose WAL it
// receives milliseconds later. The agent then runs its next loop after
// receiverRecheck instead of loop_wait, for at most one loop_wait after the
// receiver started (a receiver that starts at the leader's end of WAL
// receives nothing until the leader writes).
type receiverWatch struct {
	start     int64     // receive_start_lsn of the receiver last seen streaming; 0: none
	startSeen time.Time // when that receiver was first seen
}

// observe records st, taken at now, and reports whether the position it
// shows is the receiver's start position within window of the receiver's
// start, so that the next look should come soon.
func (w *receiverWatch) observe(st postgres.State, now time.Time, window time.Duration) bool {
	if !st.InRecovery || st.ReplicationState != "streaming" || st.ReceiveStartLSN <= 0 {
		*w = receiverWatch{}
		return false
	}
	if st.ReceiveStartLSN != w.start {
		w.start, w.startSeen = st.ReceiveStartLSN, now
	}
	return st.ReceiveLSN <= st.ReceiveStartLSN && now.Sub(w.startSeen) < window
}
