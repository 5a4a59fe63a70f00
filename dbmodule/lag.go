package dbmodule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// How a replica's lag is measured.
//
// now() - pg_last_xact_replay_timestamp() on the standby is the common
// measure, and wrong twice: on an idle primary it grows without bound
// though the standby has replayed everything, and it compares two servers'
// clocks. Comparing pg_last_wal_replay_lsn() with the primary's
// pg_current_wal_lsn() tells whether the standby is behind, but not for how
// long. So every check period the primary's WAL position is sampled and
// kept with the local time it was read; a standby that has replayed up to
// R lacks what the primary had written by the first sample past R, and its
// lag is at least the time since that sample (to within one period). An
// idle primary's position does not move, so a standby that has replayed it
// has no lag; a paused standby's lag grows with the clock.

// lsn is a position in the write-ahead log.
type lsn uint64

// parseLSN reads pg_lsn's text form: two hexadecimal halves, 16/B374D848.
func parseLSN(s string) (lsn, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("not a WAL position: %q", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("not a WAL position: %q", s)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("not a WAL position: %q", s)
	}
	return lsn(h<<32 | l), nil
}

func (l lsn) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }

// lsnHistory is the primary's WAL position over the last keep, sampled
// once a check period. Only the check loop uses it.
type lsnHistory struct {
	keep    time.Duration
	samples []lsnSample
}

type lsnSample struct {
	at  time.Time
	lsn lsn
}

// add records the primary's position at a time, forgetting samples older
// than keep but the newest of them, which bounds the lag of a standby
// behind every sample kept from below by about keep.
func (h *lsnHistory) add(at time.Time, l lsn) {
	h.samples = append(h.samples, lsnSample{at, l})
	drop := 0
	for drop+1 < len(h.samples) && at.Sub(h.samples[drop+1].at) > h.keep {
		drop++
	}
	h.samples = append(h.samples[:0], h.samples[drop:]...)
}

// lag is how far behind a standby that has replayed up to replayed is, at
// least: the time since the first sample it has not replayed.
func (h *lsnHistory) lag(replayed lsn, now time.Time) time.Duration {
	for _, s := range h.samples {
		if s.lsn > replayed {
			return max(0, now.Sub(s.at))
		}
	}
	return 0
}
