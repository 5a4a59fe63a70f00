package dbmodule

import (
	"testing"
	"time"
)

func TestParseLSN(t *testing.T) {
	for text, want := range map[string]lsn{"0/0": 0, "0/3000148": 0x3000148, "16/B374D848": 0x16_B374D848, "FFFFFFFF/FFFFFFFF": 1<<64 - 1} {
		got, err := parseLSN(text)
		if err != nil || got != want || got.String() != text {
			t.Errorf("parseLSN(%q) = %v (%s), %v; want %v", text, uint64(got), got, err, uint64(want))
		}
	}
	for _, bad := range []string{"", "3000148", "0/", "/1", "G/1", "1/100000000"} {
		if _, err := parseLSN(bad); err == nil {
			t.Errorf("parseLSN(%q) succeeded", bad)
		}
	}
}

// The lag of a standby is the time since the first primary position it has
// not replayed: none on an idle primary, growing with the clock while its
// replay is paused.
func TestLagFromPrimaryPositions(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := lsnHistory{keep: 30 * time.Second}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// An idle primary: its position stays.
	for s := range 10 {
		h.add(at(s), 100)
	}
	if lag := h.lag(100, at(10)); lag != 0 {
		t.Errorf("standby caught up with an idle primary: lag %s, want 0", lag)
	}
	// Writes resume at second 10; a standby paused at 100 falls behind.
	for s := 10; s < 20; s++ {
		h.add(at(s), lsn(100+s))
	}
	if lag := h.lag(100, at(20)); lag != 10*time.Second {
		t.Errorf("paused standby: lag %s, want 10s", lag)
	}
	if lag := h.lag(115, at(20)); lag != 4*time.Second {
		t.Errorf("standby at 115: lag %s, want 4s (since the sample of 116)", lag)
	}
	if lag := h.lag(119, at(20)); lag != 0 {
		t.Errorf("standby at the latest position: lag %s, want 0", lag)
	}
}

// Samples older than keep go, but the newest of them, so that a standby
// behind everything kept still lags by more than keep.
func TestLagHistoryForgetsOldSamples(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := lsnHistory{keep: 7 * time.Second}
	for s := range 20 {
		h.add(t0.Add(time.Duration(s)*time.Second), lsn(100+s))
	}
	if n := len(h.samples); n != 9 {
		t.Errorf("%d samples kept for a 7s window at one a second, want 9", n)
	}
	if lag := h.lag(50, t0.Add(20*time.Second)); lag <= h.keep {
		t.Errorf("standby behind every sample: lag %s, want more than %s", lag, h.keep)
	}
}
